//! Presence: says "this worker runs" in the store every few seconds, so
//! the console's overview can list the workers seen (`store::workers`).

use std::time::Duration;

use flinkq_shared::store::{Store, StoreError};
use tokio_util::sync::CancellationToken;

use super::{Next, Service};

/// How often a worker writes its sighting: the console's "seen" times are
/// this fresh.
pub const PRESENCE_PERIOD: Duration = Duration::from_secs(10);

/// Writes this worker's name and Redis' time to `workers`.
#[derive(Debug)]
pub struct Presence {
    /// The store.
    pub store: Store,
    /// This worker: `<host>:<pid>`.
    pub name: String,
}

impl Presence {
    /// The presence of this process (named after its host and pid).
    pub fn of_this_process(store: Store) -> Self {
        Presence {
            store,
            name: format!("{}:{}", host_name(), std::process::id()),
        }
    }
}

/// The host's name (Linux), else `worker`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_owned())
}

impl Service for Presence {
    const NAME: &'static str = "presence";

    fn period(&self) -> Duration {
        PRESENCE_PERIOD
    }

    /// A lost sighting only makes the console's list stale: the failure is
    /// logged by `services::run`, and the claim loop and health report
    /// Redis trouble on their own.
    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        self.store.worker_seen(&self.name).await?;
        Ok(Next::Period)
    }
}
