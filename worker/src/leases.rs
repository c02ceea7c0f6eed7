//! The steps this process holds, renewed together by one heartbeat, and the
//! reaper that gives back the steps of crashed workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flinkq_shared::JobId;
use flinkq_shared::store::{Claim, HeldClaim, PurgeSet, Store};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::events::{Event, EventSink};
use crate::health::Health;
use crate::metrics::Metrics;

/// Leases held by this process: job id → its claim.
#[derive(Debug, Default, Clone)]
pub struct HeldLeases {
    held: Arc<Mutex<HashMap<JobId, HeldClaim>>>,
}

impl HeldLeases {
    /// Records a claimed step; the guard forgets it when the step ends.
    pub fn hold(&self, claim: &Claim) -> LeaseGuard {
        let held = claim.held();
        self.lock().insert(held.id(), held.clone());
        LeaseGuard {
            leases: self.clone(),
            held,
        }
    }

    /// Every lease held now.
    pub fn snapshot(&self) -> Vec<HeldClaim> {
        self.lock().values().cloned().collect()
    }

    /// How many steps are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no step is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, HeldClaim>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets a held lease when dropped (the step committed, was fenced, or
/// gave up and lets the lease expire).
#[derive(Debug)]
pub struct LeaseGuard {
    leases: HeldLeases,
    held: HeldClaim,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        if held.get(&self.held.id()) == Some(&self.held) {
            held.remove(&self.held.id());
        }
    }
}

/// Renews every held lease each third of the lease period, in one script
/// call, until `stop`. A Redis error is logged and retried at the next beat:
/// the lease is long enough to survive a missed beat or two.
pub async fn heartbeat(
    store: Store,
    leases: HeldLeases,
    lease: Duration,
    health: Health,
    events: Arc<dyn EventSink>,
    stop: CancellationToken,
) {
    let mut beat = tokio::time::interval(lease / 3);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = beat.tick() => {}
        }
        let held = leases.snapshot();
        if held.is_empty() {
            continue;
        }
        match store.extend(lease, &held).await {
            Ok(flags) => {
                health.redis_ok();
                let lost = flags.iter().filter(|still| !**still).count();
                if lost > 0 {
                    info!(
                        lost,
                        "leases lost (expired and reaped); those steps will not commit"
                    );
                }
                debug!(renewed = held.len() - lost, "leases renewed");
            }
            Err(error) => {
                health.redis_failed(&error);
                events.emit(Event::RedisError { op: "extend" });
                warn!(%error, "cannot renew leases; retrying at the next beat");
            }
        }
    }
}

/// Most leases (and deadlines) handled per reap call.
const REAP_LIMIT: usize = 1_000;

/// Puts expired leases back in `due`, times out jobs past their deadline,
/// and deletes finished jobs older than `retention`, every `period`, until
/// `stop`. Every worker reaps: the scripts are atomic, so running them from
/// many processes is safe.
pub async fn reaper(
    store: Store,
    period: Duration,
    retention: Duration,
    health: Health,
    events: Arc<dyn EventSink>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // counted over the whole pass, logged once: an eviction storm must
        // not flood the log with one line per entry
        let mut orphans = 0;
        loop {
            match store.reap(REAP_LIMIT).await {
                Ok(reaped) => {
                    health.redis_ok();
                    orphans += reaped.orphans;
                    if reaped.timed_out > 0 {
                        events.emit(Event::JobsTimedOutByReaper {
                            count: reaped.timed_out,
                        });
                    }
                    if reaped.requeued > 0 || reaped.timed_out > 0 {
                        info!(
                            requeued = reaped.requeued,
                            timed_out = reaped.timed_out,
                            "reaped"
                        );
                    }
                    if reaped.requeued + reaped.orphans < REAP_LIMIT as u64
                        && reaped.timed_out < REAP_LIMIT as u64
                    {
                        break;
                    }
                }
                Err(error) => {
                    health.redis_failed(&error);
                    events.emit(Event::RedisError { op: "reap" });
                    warn!(%error, "reap failed; retrying next period");
                    break;
                }
            }
        }
        if orphans > 0 {
            events.emit(Event::OrphansDropped { count: orphans });
            warn!(
                orphans,
                "dropped queue and index entries whose job hash is gone (evicted or deleted); set Redis' maxmemory-policy to noeviction so jobs are not lost"
            );
        }
        match store.purge(PurgeSet::Finished, retention, REAP_LIMIT).await {
            Ok(0) => {}
            Ok(deleted) => debug!(deleted, "finished jobs past retention deleted"),
            Err(error) => {
                health.redis_failed(&error);
                events.emit(Event::RedisError { op: "purge" });
                warn!(%error, "retention purge failed; retrying next period");
            }
        }
    }
}

/// How often the queue gauges are read from Redis: one cheap script call per
/// period and worker, whatever the scrape rate or the number of jobs.
pub const QUEUE_GAUGES_PERIOD: Duration = Duration::from_secs(3);

/// Refreshes the queue and state gauges, and this worker's in-flight gauge,
/// every [`QUEUE_GAUGES_PERIOD`] until `stop`.
pub async fn queue_gauges(
    store: Store,
    leases: HeldLeases,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(QUEUE_GAUGES_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        metrics.set_in_flight(leases.len());
        match tokio::try_join!(store.queue_stats(), store.counts(None)) {
            Ok((stats, counts)) => metrics.set_queue(stats, counts),
            Err(error) => {
                metrics.emit(Event::RedisError { op: "stats" });
                debug!(%error, "cannot read the queue gauges");
            }
        }
    }
}
