//! Process health as seen by operators: `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Shared health flags, updated by the loops that talk to Redis.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    redis_down: AtomicBool,
    claiming: AtomicBool,
    /// Set by the results probe; false (the default) means writable, so a
    /// worker without a results directory (the Redis sink) is never held back.
    results_unwritable: AtomicBool,
    /// Set by the primary probe: the node serving the namespace is not a
    /// primary that takes writes (a replica, or none answers). False (the
    /// default) until the probe says otherwise.
    primary_unwritable: AtomicBool,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Serialize)]
struct Report {
    status: &'static str,
    redis: &'static str,
    claiming: bool,
    results_writable: bool,
    primary_writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_redis_error: Option<String>,
}

impl Health {
    /// A Redis call succeeded.
    pub fn redis_ok(&self) {
        self.inner.redis_down.store(false, Ordering::Relaxed);
    }

    /// A Redis call failed.
    pub fn redis_failed(&self, error: &dyn std::fmt::Display) {
        self.inner.redis_down.store(true, Ordering::Relaxed);
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    /// The claimer started or stopped claiming.
    pub fn set_claiming(&self, claiming: bool) {
        self.inner.claiming.store(claiming, Ordering::Relaxed);
    }

    /// The results probe's latest answer.
    pub fn set_results_writable(&self, writable: bool) {
        self.inner
            .results_unwritable
            .store(!writable, Ordering::Relaxed);
    }

    /// The primary probe's latest answer.
    pub fn set_primary_writable(&self, writable: bool) {
        self.inner
            .primary_unwritable
            .store(!writable, Ordering::Relaxed);
    }

    /// Does a writable primary serve the namespace (as last probed)?
    pub fn primary_writable(&self) -> bool {
        !self.inner.primary_unwritable.load(Ordering::Relaxed)
    }

    /// Can results be written (always true with the Redis sink)?
    pub fn results_writable(&self) -> bool {
        !self.inner.results_unwritable.load(Ordering::Relaxed)
    }

    /// Is Redis answering?
    pub fn redis_up(&self) -> bool {
        !self.inner.redis_down.load(Ordering::Relaxed)
    }

    fn report(&self) -> Report {
        let up = self.redis_up();
        Report {
            status: if up { "ok" } else { "degraded" },
            redis: if up { "up" } else { "down" },
            claiming: self.inner.claiming.load(Ordering::Relaxed),
            results_writable: self.results_writable(),
            primary_writable: self.primary_writable(),
            last_redis_error: if up {
                None
            } else {
                self.inner
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            },
        }
    }
}

/// Serves `/healthz` (alive: always 200, body says whether Redis is up),
/// `/readyz` (200 only while Redis answers, a writable primary serves the
/// namespace, the worker claims and results can be written) and
/// `/metrics` (Prometheus text format) until `stop`.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
        .merge(
            Router::new()
                .route("/metrics", get(render))
                .with_state(metrics),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn render(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.render(),
    )
}

async fn healthz(State(health): State<Health>) -> impl IntoResponse {
    Json(health.report())
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    let report = health.report();
    let status = if report.redis == "up"
        && report.primary_writable
        && report.claiming
        && report.results_writable
    {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}
