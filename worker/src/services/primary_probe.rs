//! The primary probe: does a writable primary serve the namespace? For
//! `/readyz`, which must turn false while a failover leaves no primary (the
//! old one is down or demoted, none promoted yet) even when this worker has
//! nothing to claim or commit and so would not notice by itself.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Next, Service};
use crate::events::{Event, EventSink, RedisOp};
use crate::health::Health;

/// How often `ROLE` is asked: one cheap command a second per worker, and a
/// readiness that lags a failover by about as much as Sentinel's own
/// detection does.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// Asks the node serving the namespace whether it is a primary (`ROLE`).
#[derive(Debug)]
pub struct PrimaryProbe {
    /// The store.
    pub store: Store,
    /// Health flags.
    pub health: Health,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
}

impl Service for PrimaryProbe {
    const NAME: &'static str = "primary probe";

    fn period(&self) -> Duration {
        PROBE_PERIOD
    }

    /// Keeps probing every period while Redis is down: readiness must come
    /// back as soon as a primary does.
    fn max_backoff(&self) -> Duration {
        PROBE_PERIOD
    }

    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        let was = self.health.primary_writable();
        let writable = match self.store.primary_writable().await {
            Ok(writable) => writable,
            Err(error) => {
                self.health.set_primary_writable(false);
                self.events.emit(Event::redis_error(RedisOp::Probe, &error));
                return Err(error);
            }
        };
        self.health.set_primary_writable(writable);
        if was && !writable {
            warn!(
                "the Redis node serving the namespace is a replica: not ready until a primary answers"
            );
        } else if !was && writable {
            info!("a writable Redis primary serves the namespace again");
        }
        Ok(Next::Period)
    }
}
