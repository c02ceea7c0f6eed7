//! Riding out a Redis blip (a restart, a failover): short retry delays
//! capped at [`RETRY_CAP`], so a command is back within about a second of
//! Redis. `flinkq status --watch`, `flinkq enqueue` and `flinkq schedule`
//! share them.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use flinkq_shared::store::StoreError;

/// The longest wait between two tries: Redis back means the command is back
/// within this long.
pub const RETRY_CAP: Duration = Duration::from_secs(1);

/// Retry delays: doubling from 100 ms, never above [`RETRY_CAP`] (half of
/// it plus up to as much jitter, so many CLIs do not reconnect in step);
/// endless (callers bound the time).
pub fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(RETRY_CAP / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `op` until it succeeds, fails with an answer from Redis, or Redis
/// has not answered for `patience`; then returns the last error. Only
/// idempotent operations belong here: a try whose answer was lost may have
/// been applied.
pub async fn patiently<T>(
    what: &str,
    patience: Duration,
    mut op: impl AsyncFnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut delays = backoff();
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if error.is_unanswered() && started.elapsed() < patience => {
                let delay = delays.next().unwrap_or(RETRY_CAP);
                tracing::warn!(%error, retry_in = ?delay, "{what}: Redis did not answer; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_never_exceed_the_cap() {
        let delays: Vec<Duration> = backoff().take(50).collect();
        assert!(delays.iter().all(|d| *d <= RETRY_CAP), "{delays:?}");
        assert!(delays[0] < Duration::from_millis(250), "{delays:?}");
    }
}
