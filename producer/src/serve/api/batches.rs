//! Batches: enqueue a list of logins into one (`POST
//! /api/v1/batches/{batch}/jobs`), list them, read one.
//!
//! Enqueue follows `flinkq enqueue --batch` exactly: the batch name rule,
//! every loginId validated before Redis is touched (one invalid → 422
//! naming each bad index, nothing enqueued), duplicates dropped, chunks
//! pipelined, and idempotent per batch (sending the same request again
//! enqueues nothing twice).

use axum::Json;
use axum::extract::{Path, Query, State};
use flinkq_shared::Priority;
use flinkq_shared::store::{BatchSummary, ENQUEUE_CHUNK, EnqueueReport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, BatchNameText, Counts, JsonOk, LoginIdText, ProductName, product_or_default};
use crate::cli::BATCH_NAME;
use crate::input::Validator;
use crate::serve::AppState;
use crate::serve::auth::{Operator, Reader};
use crate::serve::error::{ErrorBody, ServeError};

/// Enqueue scripts sent in one pipelined round trip (as the CLI does).
const CHUNKS_PER_ROUND_TRIP: usize = 8;

/// What to enqueue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// LoginIds (UUIDs). Duplicates are enqueued once.
    #[schema(value_type = Vec<LoginIdText>, min_items = 1)]
    pub logins: Vec<String>,
    /// The Flinks product (default: the first of the table, `investments`).
    #[serde(default)]
    #[schema(value_type = Option<ProductName>)]
    pub product: Option<String>,
    /// Claim order (default `normal`).
    #[serde(default)]
    pub priority: Option<PriorityName>,
}

/// Claim order: `high` is claimed before `normal`, `normal` before `low`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityName {
    /// Urgent: claimed first.
    High,
    /// The default.
    Normal,
    /// Bulk refreshes.
    Low,
}

impl From<PriorityName> for Priority {
    fn from(name: PriorityName) -> Self {
        match name {
            PriorityName::High => Priority::High,
            PriorityName::Normal => Priority::Normal,
            PriorityName::Low => Priority::Low,
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueueResponse {
    /// New jobs.
    pub enqueued: u64,
    /// Logins that already had an unfinished job of the product in another
    /// batch.
    pub already_active: u64,
    /// Logins already in this batch (the request was sent before).
    pub already_in_batch: u64,
}

/// One batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct Batch {
    /// Its name.
    pub batch: String,
    /// First enqueue (ms since the epoch).
    pub created_ms: u64,
    /// When its last unfinished job finished (ms), if it has.
    pub completed_ms: Option<u64>,
    /// Jobs per state.
    pub counts: Counts,
}

impl From<BatchSummary> for Batch {
    fn from(b: BatchSummary) -> Self {
        Batch {
            batch: b.name,
            created_ms: b.created_ms,
            completed_ms: b.completed_ms,
            counts: b.counts,
        }
    }
}

/// `?limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many, newest first (1-1000, default 20).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Enqueues one job per login of the list (idempotent per batch).
#[utoipa::path(
    post,
    path = "/api/v1/batches/{batch}/jobs",
    tag = "batches",
    params(("batch" = inline(BatchNameText), Path, description = "Batch name: 1-64 letters, digits, '-', '_' or '.'")),
    request_body = EnqueueRequest,
    responses(
        (status = 200, description = "Enqueued (or already there)", body = EnqueueResponse),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 413, description = "Body over FLINKQ_SERVE_MAX_BODY", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 422, description = "Invalid loginIds (each index named; nothing enqueued), batch name, product or priority", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn enqueue(
    _: Operator,
    State(state): State<AppState>,
    Path(batch): Path<String>,
    ApiJson(request): ApiJson<EnqueueRequest>,
) -> JsonOk<EnqueueResponse> {
    let batch = BATCH_NAME.check(&batch).map_err(ServeError::Invalid)?;
    let product = product_or_default(request.product.as_deref())?;
    let priority = request.priority.map_or(Priority::Normal, Priority::from);
    if request.logins.is_empty() {
        return Err(ServeError::Invalid(
            "\"logins\" is empty: list at least one loginId".into(),
        ));
    }
    // the CLI's validator: the same loginId rule and dedupe, spooled to a
    // temporary file so the ids are not held twice
    let mut input = tokio::task::spawn_blocking(move || {
        let spool = |source| crate::error::CliError::Spool { source };
        let mut validator = Validator::new().map_err(spool)?;
        for (index, login) in request.logins.iter().enumerate() {
            validator
                .add_value(|| format!("logins[{index}]"), login)
                .map_err(spool)?;
        }
        validator.finish().map_err(spool)
    })
    .await
    .map_err(|e| ServeError::BadRequest(format!("validation stopped: {e}")))??;
    if input.invalid_count > 0 {
        return Err(ServeError::InvalidLogins {
            count: input.invalid_count,
            listed: std::mem::take(&mut input.invalid),
        });
    }
    let mut report = EnqueueReport::default();
    let mut confirmed = 0;
    while let Some(logins) = input.next_chunk(ENQUEUE_CHUNK * CHUNKS_PER_ROUND_TRIP)? {
        let answer = state
            .store
            .enqueue_with(&batch, priority, product, &logins)
            .await
            .map_err(|source| ServeError::EnqueueInterrupted { confirmed, source })?;
        report += answer;
        confirmed += logins.len() as u64;
    }
    tracing::info!(
        %batch,
        %product,
        enqueued = report.enqueued,
        already_active = report.already_active,
        already_in_batch = report.already_in_batch,
        "enqueued over HTTP"
    );
    Ok(Json(EnqueueResponse {
        enqueued: report.enqueued,
        already_active: report.already_active,
        already_in_batch: report.already_in_batch,
    }))
}

/// Recent batches, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/batches",
    tag = "batches",
    params(ListQuery),
    responses(
        (status = 200, description = "Batches, newest first", body = [Batch]),
        (status = 400, description = "Bad limit", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn list(
    _: Reader,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> JsonOk<Vec<Batch>> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ServeError::BadRequest(format!(
            "limit {limit} is out of range: use 1 to 1000"
        )));
    }
    let batches = state.store.batches(limit as usize).await?;
    Ok(Json(batches.into_iter().map(Batch::from).collect()))
}

/// One batch and its counts.
#[utoipa::path(
    get,
    path = "/api/v1/batches/{batch}",
    tag = "batches",
    params(("batch" = inline(BatchNameText), Path, description = "Batch name")),
    responses(
        (status = 200, description = "The batch", body = Batch),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 404, description = "No batch of that name", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn one(
    _: Reader,
    State(state): State<AppState>,
    Path(batch): Path<String>,
) -> JsonOk<Batch> {
    let unknown = || {
        ServeError::NotFound(format!(
            "no batch named {batch:?} in this namespace (check FLINKQ_NAMESPACE; GET /api/v1/batches lists them)"
        ))
    };
    // a name that breaks the rule cannot exist: never sent to Redis
    if BATCH_NAME.check(&batch).is_err() {
        return Err(unknown());
    }
    match state.store.batch_summary(&batch).await? {
        Some(summary) => Ok(Json(summary.into())),
        None => Err(unknown()),
    }
}
