//! The claim loop: claims due jobs from Redis in batches, as fast as free
//! concurrency slots allow, and hands them to the apalis worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flinkq_shared::store::Store;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::claimed::{ClaimedStep, StepClock};
use crate::events::{Event, EventSink, RedisOp};
use crate::health::Health;
use crate::leases::HeldLeases;
use crate::services::{backoff, sleep_or_stop};
use crate::wake::ClaimWake;

/// Longest idle sleep: how late a newly enqueued job can be noticed.
pub const IDLE_POLL: Duration = Duration::from_millis(200);
/// Redis error backoff bounds.
const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the claim loop needs.
#[derive(Debug, Clone)]
pub struct Claimer {
    /// The store.
    pub store: Store,
    /// Lease of each claim.
    pub lease: Duration,
    /// A job's authorize deadline, counted from its first claim (indexed by
    /// the claim so the reaper enforces it).
    pub authorize_timeout: Duration,
    /// When set, each claim also begins its steps (records their
    /// `not_before` with this poll interval, see [`Store::claim_to_run`]),
    /// saving each step its `begin` round trip. Only without a rate limit,
    /// which `begin` applies per call.
    pub begin_on_claim: Option<Duration>,
    /// Most jobs per claim call.
    pub batch: usize,
    /// Concurrency slots: one per running step.
    pub slots: Arc<Semaphore>,
    /// Leases held by this process.
    pub leases: HeldLeases,
    /// Health flags.
    pub health: Health,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Wakes the loop when a step is scheduled sooner than it would look.
    pub wake: Arc<ClaimWake>,
}

impl Claimer {
    /// Claims until `stop`, sending steps to `tx`. Never returns an error: a
    /// Redis outage is logged, reported on /healthz, and retried with backoff.
    pub async fn run(self, tx: mpsc::Sender<ClaimedStep>, stop: CancellationToken) {
        self.health.set_claiming(true);
        let mut failures = backoff(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
        'claiming: loop {
            self.wake.busy();
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                slot = self.slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            let mut slots = vec![first];
            while slots.len() < self.batch {
                match self.slots.clone().try_acquire_owned() {
                    Ok(slot) => slots.push(slot),
                    Err(_) => break,
                }
            }
            let wanted = slots.len();
            // Anchor the steps' clock at the moment the claim was sent: Redis
            // read its TIME after that, so the anchored clock never runs
            // behind Redis' and a poll interval is never cut short.
            let sent = Instant::now();
            let claiming = match self.begin_on_claim {
                Some(poll_interval) => {
                    self.store
                        .claim_to_run(wanted, self.lease, self.authorize_timeout, poll_interval)
                        .await
                }
                None => {
                    self.store
                        .claim_bounded(wanted, self.lease, self.authorize_timeout)
                        .await
                }
            };
            let claimed = match claiming {
                Ok(claimed) => claimed,
                Err(error) => {
                    self.health.redis_failed(&error);
                    self.events.emit(Event::redis_error(RedisOp::Claim, &error));
                    let delay = failures.next().unwrap_or(ERROR_BACKOFF_MAX);
                    warn!(%error, retry_in = ?delay, "claim failed; backing off");
                    drop(slots);
                    if sleep_or_stop(delay, &stop).await {
                        break;
                    }
                    continue;
                }
            };
            self.health.redis_ok();
            failures = backoff(ERROR_BACKOFF_MIN, ERROR_BACKOFF_MAX);
            let got = claimed.jobs.len();
            if got > 0 {
                debug!(claimed = got, "claimed");
            }
            for claim in claimed.jobs {
                let Some(slot) = slots.pop() else { break };
                let step = ClaimedStep {
                    _lease: self.leases.hold(&claim),
                    claim,
                    clock: StepClock::new(claimed.now_ms + 1, sent),
                    _slot: slot,
                };
                if tx.send(step).await.is_err() {
                    // The worker is gone; what we hold is released by lease expiry.
                    break 'claiming;
                }
            }
            drop(slots);
            if got == wanted {
                continue;
            }
            let idle = claimed
                .next_due_ms
                .map(|due| Duration::from_millis(due.saturating_sub(claimed.now_ms)))
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            if idle.is_zero() {
                continue;
            }
            self.wake.sleeping_until(
                claimed.now_ms + u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            );
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(idle) => {}
                _ = self.wake.woken() => {}
            }
        }
        self.health.set_claiming(false);
    }
}
