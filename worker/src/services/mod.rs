//! The worker's background services, one per file. A service is a name, a
//! period and a tick; [`run`] runs it until shutdown, and on a failed tick
//! logs the error and backs off (with `backon`) before the next one. Every
//! wait in here (and in the claim loop) ends at once when the worker stops.
//!
//! - [`heartbeat`]: renews every lease this process holds.
//! - [`reaper`]: gives back the steps of crashed workers, times out jobs past their deadline.
//! - [`retention`]: deletes finished jobs older than `FLINKQ_RETENTION`.
//! - [`gauges`]: refreshes the queue, state and in-flight gauges.
//! - [`results_probe`]: is the results directory writable (for `/readyz`).
//! - [`webhook`]: POSTs batch completions to `FLINKQ_BATCH_WEBHOOK`.

pub mod gauges;
pub mod heartbeat;
pub mod reaper;
pub mod results_probe;
pub mod retention;
pub mod webhook;

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use flinkq_shared::store::StoreError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// When a service wants its next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After its period.
    Period,
    /// Right away: more work is waiting.
    Now,
}

/// A background service: [`run`] calls `tick` every `period` until shutdown.
pub trait Service: Send + 'static {
    /// Names the service in logs.
    const NAME: &'static str;

    /// Time from the start of one tick to the start of the next (a tick
    /// longer than that is followed by the next at once).
    fn period(&self) -> Duration;

    /// The longest wait after failed ticks in a row. The backoff starts at
    /// the period and doubles up to this. Four periods unless the service
    /// cannot wait that long.
    fn max_backoff(&self) -> Duration {
        self.period() * 4
    }

    /// One round of the service's work. An error has been reported to
    /// health and metrics by the service; [`run`] logs it and backs off.
    fn tick(
        &mut self,
        stop: &CancellationToken,
    ) -> impl Future<Output = Result<Next, StoreError>> + Send;
}

/// Runs `service` until `stop`: a first tick right away, then one per
/// period; after a failed tick, a backoff from the period up to its
/// [`Service::max_backoff`], reset by the next success.
pub async fn run<S: Service>(mut service: S, stop: CancellationToken) {
    let mut failures = backoff(service.period(), service.max_backoff());
    loop {
        let started = Instant::now();
        let wait = match service.tick(&stop).await {
            Ok(Next::Now) => {
                failures = backoff(service.period(), service.max_backoff());
                Duration::ZERO
            }
            Ok(Next::Period) => {
                failures = backoff(service.period(), service.max_backoff());
                service.period()
            }
            Err(error) => {
                let delay = failures.next().unwrap_or(service.max_backoff());
                warn!(service = S::NAME, %error, retry_in = ?delay, "{} failed; retrying", S::NAME);
                delay
            }
        };
        if stop.is_cancelled() || sleep_until_or_stop(started + wait, &stop).await {
            return;
        }
    }
}

/// Doubling delays from `min` to `max`, endless: the one backoff of the
/// worker's Redis loops.
pub fn backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> + Send {
    ExponentialBuilder::new()
        .with_min_delay(min)
        .with_max_delay(max.max(min))
        .with_factor(2.0)
        .without_max_times()
        .build()
}

/// Sleeps `delay`; true if `stop` came first.
pub async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    sleep_until_or_stop(Instant::now() + delay, stop).await
}

async fn sleep_until_or_stop(deadline: Instant, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep_until(deadline) => false,
    }
}
