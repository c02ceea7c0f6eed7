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
        let outcome = loop {
            let reaped = match self.store.reap(REAP_LIMIT).await {
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
