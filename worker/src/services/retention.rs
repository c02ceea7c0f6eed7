//! Retention: deletes finished jobs older than `FLINKQ_RETENTION`.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{PurgeSet, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::reaper::REAP_LIMIT;
use super::{Next, Service};
use crate::events::{Event, EventSink, RedisOp};
use crate::health::Health;

/// Deletes up to [`REAP_LIMIT`] finished jobs past `retention` every
/// `period`. Like the reaper, every worker runs it: the script is atomic.
#[derive(Debug)]
pub struct Retention {
    /// The store.
    pub store: Store,
    /// Time between two purges.
    pub period: Duration,
    /// How long a finished job is kept.
    pub retention: Duration,
    /// Health flags.
    pub health: Health,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
}

impl Service for Retention {
    const NAME: &'static str = "retention";

    fn period(&self) -> Duration {
        self.period
    }

    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        let purged = self
            .store
            .purge(PurgeSet::Finished, self.retention, REAP_LIMIT)
            .await;
        match purged {
            Ok(0) => {}
            Ok(deleted) => debug!(deleted, "finished jobs past retention deleted"),
            Err(error) => {
                self.health.redis_failed(&error);
                self.events.emit(Event::redis_error(RedisOp::Purge, &error));
                return Err(error);
            }
        }
        Ok(Next::Period)
    }
}
