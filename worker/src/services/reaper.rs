//! The reaper: gives back the steps of crashed workers and times out jobs
//! past their deadline. Every worker reaps: the scripts are atomic, so
//! running them from many processes is safe.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Next, Service};
use crate::events::{Event, EventSink, RedisOp};
use crate::health::Health;

/// Most leases (and deadlines) handled per reap call.
pub const REAP_LIMIT: usize = 1_000;
/// The orphan sweep runs on one pass in this many: it reads every entry it
/// pages through, and orphans (hashes evicted or deleted by hand) are rare;
/// the leases and deadlines that are due are reaped on every pass.
pub const SWEEP_EVERY: u64 = 4;

/// Puts expired leases back in `due` and times out jobs past their
/// deadline, every `period`.
#[derive(Debug)]
pub struct Reaper {
    /// The store.
    pub store: Store,
    /// Time between two passes.
    pub period: Duration,
    /// Health flags.
    pub health: Health,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Passes run so far.
    passes: u64,
}

impl Reaper {
    /// A reaper that runs every `period`.
    pub fn new(store: Store, period: Duration, health: Health, events: Arc<dyn EventSink>) -> Self {
        Reaper {
            store,
            period,
            health,
            events,
            passes: 0,
        }
    }
}

impl Service for Reaper {
    const NAME: &'static str = "reaper";

    fn period(&self) -> Duration {
        self.period
    }

    /// One pass: reap calls until one comes back short of the limit.
    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        // counted over the whole pass, logged once: an eviction storm must
        // not flood the log with one line per entry
        let mut orphans = 0;
        // the first sweep comes a few passes after start, not while a fresh
        // worker is busiest
        self.passes += 1;
        let sweep = if self.passes.is_multiple_of(SWEEP_EVERY) {
            REAP_LIMIT
        } else {
            0
        };
        let outcome = loop {
            let reaped = match self.store.reap_sweeping(REAP_LIMIT, sweep).await {
                Ok(reaped) => reaped,
                Err(error) => {
                    self.health.redis_failed(&error);
                    self.events.emit(Event::redis_error(RedisOp::Reap, &error));
                    break Err(error);
                }
            };
            self.health.redis_ok();
            orphans += reaped.orphans;
            if reaped.timed_out > 0 {
                self.events.emit(Event::JobsTimedOutByReaper {
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
                break Ok(Next::Period);
            }
        };
        if orphans > 0 {
            self.events.emit(Event::OrphansDropped { count: orphans });
            warn!(
                orphans,
                "dropped queue and index entries whose job hash is gone (evicted or deleted); set Redis' maxmemory-policy to noeviction so jobs are not lost"
            );
        }
        outcome
    }
}
