//! Dead letters (failed and timed-out jobs): requeue some or all of them
//! as fresh runs, purge old ones.

use axum::Json;
use axum::extract::State;
use flinkq_shared::JobState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, JsonOk, LoginIdText, ProductName, login_of, product_filter};
use crate::serve::AppState;
use crate::serve::auth::Operator;
use crate::serve::error::{ErrorBody, ServeError};

/// Which dead letters to requeue: `{"logins": [...]}` or `{"all": true}`,
/// each with an optional `product`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RetryRequest {
    /// Some logins.
    Logins(RetryLogins),
    /// Every dead letter.
    All(RetryAll),
}

/// `{"logins": [...], "product"?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryLogins {
    /// These logins' newest dead job of the product.
    #[schema(value_type = Vec<LoginIdText>, min_items = 1)]
    pub logins: Vec<String>,
    /// The product of their dead job (default `investments`).
    #[serde(default)]
    #[schema(value_type = Option<ProductName>)]
    pub product: Option<String>,
}

/// `{"all": true, "product"?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryAll {
    /// `true`: every dead letter present when the request starts.
    #[schema(value_type = AllTrue)]
    pub all: bool,
    /// Only this product's (default: every product).
    #[serde(default)]
    #[schema(value_type = Option<ProductName>)]
    pub product: Option<String>,
}

/// The literal `true`.
#[derive(Debug)]
pub struct AllTrue;

impl utoipa::PartialSchema for AllTrue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Boolean)
            .enum_values(Some([true]))
            .into()
    }
}

impl ToSchema for AllTrue {}

/// What a retry did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryReport {
    /// Dead letters requeued.
    pub requeued: u64,
    /// Left dead: their login already has an unfinished job of that product.
    pub skipped: u64,
    /// Listed logins whose newest job of the product is not dead (or who
    /// have none).
    pub not_dead: u64,
}

/// Which dead letters to delete.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Only those that finished more than this long ago, e.g. `7d`, `12h`,
    /// `0s` (every one).
    #[schema(pattern = "^[0-9]{1,9}(ms|s|m|h|d)$", example = "7d")]
    pub older_than: String,
    /// Only this product's (default: every product).
    #[serde(default)]
    #[schema(value_type = Option<ProductName>)]
    pub product: Option<String>,
}

/// What a purge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurgeReport {
    /// Dead letters deleted.
    pub purged: u64,
}

/// Requeues dead letters as fresh runs.
#[utoipa::path(
    post,
    path = "/api/v1/dead/retry",
    tag = "dead",
    request_body = RetryRequest,
    responses(
        (status = 200, description = "Requeued", body = RetryReport),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body over FLINKQ_SERVE_MAX_BODY", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Neither or both of logins and all, an invalid loginId (nothing done), or an unknown product", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn retry(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RetryRequest>,
) -> JsonOk<RetryReport> {
    match request {
        RetryRequest::All(RetryAll { all: true, product }) => {
            let product = product_filter(product.as_deref())?;
            let page = crate::dead::retry_all_pages(&state.store, product).await?;
            Ok(Json(RetryReport {
                requeued: page.requeued,
                skipped: page.skipped,
                not_dead: 0,
            }))
        }
        RetryRequest::Logins(RetryLogins { logins, product }) if !logins.is_empty() => {
            let product = product_filter(product.as_deref())?;
            // every loginId is checked before anything is requeued
            let mut parsed = Vec::with_capacity(logins.len());
            let mut invalid = Vec::new();
            for (index, text) in logins.iter().enumerate() {
                match login_of(text) {
                    Ok(login) => parsed.push(login),
                    Err(error) => invalid.push(crate::input::InvalidLine {
                        location: format!("logins[{index}]"),
                        reason: error.to_string(),
                    }),
                }
            }
            if !invalid.is_empty() {
                let count = invalid.len() as u64;
                invalid.truncate(crate::input::MAX_KEPT_INVALID);
                return Err(ServeError::InvalidLogins {
                    count,
                    listed: invalid,
                });
            }
            parsed.sort_unstable();
            parsed.dedup();
            let product = product.unwrap_or_default();
            let mut dead = Vec::new();
            let mut not_dead = 0;
            for login in &parsed {
                match state.store.job_for_login(login, product).await? {
                    Some(job) if matches!(job.state, JobState::Failed | JobState::TimedOut) => {
                        dead.push(job.id);
                    }
                    _ => not_dead += 1,
                }
            }
            let mut report = RetryReport {
                requeued: 0,
                skipped: 0,
                not_dead,
            };
            for ids in dead.chunks(1_000) {
                let (requeued, skipped) = state.store.retry_dead(ids).await?;
                report.requeued += requeued;
                report.skipped += skipped;
            }
            Ok(Json(report))
        }
        _ => Err(ServeError::Invalid(
            "give either \"logins\": [loginIds...] or \"all\": true".into(),
        )),
    }
}

/// Deletes dead letters that finished more than `older_than` ago.
#[utoipa::path(
    post,
    path = "/api/v1/dead/purge",
    tag = "dead",
    request_body = PurgeRequest,
    responses(
        (status = 200, description = "Purged", body = PurgeReport),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body over FLINKQ_SERVE_MAX_BODY", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Bad older_than or unknown product", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn purge(
    _: Operator,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PurgeRequest>,
) -> JsonOk<PurgeReport> {
    let older_than = humantime::parse_duration(&request.older_than).map_err(|e| {
        ServeError::Invalid(format!(
            "older_than {:?} is not a duration ({e}): use e.g. 7d, 12h or 0s",
            request.older_than
        ))
    })?;
    let product = product_filter(request.product.as_deref())?;
    let purged = crate::dead::purge(&state.store, older_than, product).await?;
    Ok(Json(PurgeReport { purged }))
}
