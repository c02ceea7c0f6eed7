//! `GET /api/v1/health`: is the server up and does Redis answer? No token:
//! load balancers and orchestrators probe it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::serve::AppState;

/// The server's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when Redis does not answer.
    pub status: &'static str,
    /// `ok`, or what Redis said.
    pub redis: String,
    /// This flinkq's version.
    pub version: &'static str,
}

/// Health: 200 when Redis answers, 503 otherwise.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Up, and Redis answers", body = Health),
        (status = 503, description = "Up, but Redis does not answer", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let version = env!("CARGO_PKG_VERSION");
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                redis: "ok".into(),
                version,
            }),
        ),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                redis: error.to_string(),
                version,
            }),
        ),
    }
}
