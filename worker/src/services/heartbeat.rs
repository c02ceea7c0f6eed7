//! The heartbeat: renews every lease this process holds, in one script call.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{Next, Service};
use crate::events::{Event, EventSink, RedisOp};
use crate::health::Health;
use crate::leases::HeldLeases;

/// Renews every held lease each third of the lease period. A failed beat is
/// retried at the next one: the lease is long enough to survive a missed
/// beat or two, and no longer.
#[derive(Debug)]
pub struct Heartbeat {
    /// The store.
    pub store: Store,
    /// What this process holds.
    pub leases: HeldLeases,
    /// The lease period each beat renews.
    pub lease: Duration,
    /// Health flags.
    pub health: Health,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
}

impl Service for Heartbeat {
    const NAME: &'static str = "heartbeat";

    fn period(&self) -> Duration {
        self.lease / 3
    }

    /// Never longer than a beat: a longer wait would let held leases expire.
    fn max_backoff(&self) -> Duration {
        self.period()
    }

    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        let held = self.leases.snapshot();
        if held.is_empty() {
            return Ok(Next::Period);
        }
        let flags = self
            .store
            .extend(self.lease, &held)
            .await
            .inspect_err(|error| {
                self.health.redis_failed(error);
                self.events.emit(Event::redis_error(RedisOp::Extend, error));
            })?;
        self.health.redis_ok();
        let lost = flags.iter().filter(|still| !**still).count();
        if lost > 0 {
            info!(
                lost,
                "leases lost (expired and reaped); those steps will not commit"
            );
        }
        debug!(renewed = held.len() - lost, "leases renewed");
        Ok(Next::Period)
    }
}
