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
//! - [`primary_probe`]: does a writable Redis primary serve the namespace (for `/readyz`).
//! - [`webhook`]: POSTs batch completions to `FLINKQ_BATCH_WEBHOOK`.
//! - [`presence`]: writes this worker's sighting for the console's "workers seen".

pub mod gauges;
pub mod heartbeat;
pub mod presence;
pub mod primary_probe;
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    const PERIOD: Duration = Duration::from_millis(100);

    /// Fails the ticks whose number is in `failing`, recording when each
    /// tick started (on the paused clock).
    struct Scripted {
        failing: Vec<usize>,
        ticks: Arc<Mutex<Vec<Instant>>>,
    }

    impl Service for Scripted {
        const NAME: &'static str = "scripted";

        fn period(&self) -> Duration {
            PERIOD
        }

        async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
            let mut ticks = self.ticks.lock().unwrap_or_else(PoisonError::into_inner);
            ticks.push(Instant::now());
            if self.failing.contains(&(ticks.len() - 1)) {
                return Err(StoreError::Reply {
                    op: "scripted",
                    detail: "a failure on purpose".into(),
                });
            }
            Ok(Next::Period)
        }
    }

    /// Time between ticks, in whole 10 ms (tokio's timer may add a
    /// millisecond of rounding, even on a paused clock).
    fn gaps(ticks: &[Instant]) -> Vec<u128> {
        ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() / 10 * 10)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_service_backs_off_up_to_its_cap_and_resets_on_success() {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let service = Scripted {
            failing: vec![1, 2, 3, 4],
            ticks: ticks.clone(),
        };
        let running = tokio::spawn(run(service, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.cancel();
        running.await.expect("the service loop ends at shutdown");
        let ticks = ticks.lock().unwrap_or_else(PoisonError::into_inner);
        // tick 0 succeeds (period), ticks 1-4 fail (100, 200, 400, then
        // capped at four periods), tick 5 succeeds and the period is back
        assert_eq!(
            gaps(&ticks)[..6],
            [100, 100, 200, 400, 400, 100],
            "{ticks:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_stops_at_shutdown_even_mid_backoff() {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let service = Scripted {
            failing: (0..1000).collect(),
            ticks: ticks.clone(),
        };
        let running = tokio::spawn(run(service, stop.clone()));
        tokio::time::sleep(Duration::from_millis(250)).await;
        stop.cancel();
        let started = Instant::now();
        running.await.expect("the service loop ends at shutdown");
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait after shutdown");
        assert_eq!(
            ticks.lock().unwrap_or_else(PoisonError::into_inner).len(),
            2,
            "ticks at 0 and 100 ms; the next, due at 300 ms, never comes"
        );
    }
}
