//! The queue gauges: queue, state and in-flight counts, read from Redis.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use super::{Next, Service};
use crate::events::{Event, EventSink, RedisOp};
use crate::leases::HeldLeases;
use crate::metrics::Metrics;

/// How often the queue gauges are read from Redis: one cheap script call per
/// period and worker, whatever the scrape rate or the number of jobs.
pub const QUEUE_GAUGES_PERIOD: Duration = Duration::from_secs(3);

/// Refreshes the queue and state gauges, and this worker's in-flight gauge,
/// every [`QUEUE_GAUGES_PERIOD`].
#[derive(Debug)]
pub struct QueueGauges {
    /// The store.
    pub store: Store,
    /// What this process holds (the in-flight gauge).
    pub leases: HeldLeases,
    /// The gauges.
    pub metrics: Arc<Metrics>,
}

impl Service for QueueGauges {
    const NAME: &'static str = "queue gauges";

    fn period(&self) -> Duration {
        QUEUE_GAUGES_PERIOD
    }

    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        self.metrics.set_in_flight(self.leases.len());
        let read = tokio::try_join!(self.store.queue_stats(), self.store.counts(None));
        let (stats, counts) = read.inspect_err(|error| {
            self.metrics.emit(Event::redis_error(RedisOp::Stats, error));
        })?;
        self.metrics.set_queue(stats, counts);
        Ok(Next::Period)
    }
}
