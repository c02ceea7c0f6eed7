//! One login: its jobs of every product (`GET
//! /api/v1/logins/{loginId}/jobs`), its newest payload of a product (full
//! token only), and cancelling its unfinished job of a product.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use flinkq_shared::{JobSnapshot, Product};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{JsonOk, LoginIdText, ProductName, login_of, product_filter};
use crate::serve::AppState;
use crate::serve::auth::{Operator, Reader};
use crate::serve::error::{ErrorBody, ServeError};

/// A job's last error.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobError {
    /// The FlinksCode, or flinkq's own code (`POLL_TIMEOUT`, `CONNECT`…).
    pub code: String,
    /// The HTTP status Flinks answered, if it answered.
    pub http_status: Option<u16>,
    /// The message.
    pub message: String,
}

/// What a job's steps amounted to.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepSummary {
    /// Enqueued (ms since the epoch).
    pub created_ms: u64,
    /// First claimed (ms).
    pub started_ms: Option<u64>,
    /// Last change (ms).
    pub updated_ms: u64,
    /// Finished (ms).
    pub finished_ms: Option<u64>,
    /// Its polling deadline (ms).
    pub deadline_ms: Option<u64>,
    /// The product's data stage it is at (0-based).
    pub stage: u8,
    /// Data calls made.
    pub polls: u32,
    /// Successful Authorize calls.
    pub auths: u32,
    /// Sessions opened this run.
    pub sessions: u32,
    /// Transient failures retried.
    pub retries: u32,
    /// A short label of the last step's outcome.
    pub last_step: Option<String>,
}

/// One job of a login, never its payload nor its claim token: fields are
/// copied one by one, so a field added to the job hash is never shown by
/// accident.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginJob {
    /// The job's id.
    pub id: String,
    /// The product it fetches.
    pub product: String,
    /// `queued`, `authorizing`, `polling`, `succeeded`, `failed`,
    /// `timed_out` or `cancelled`.
    pub state: String,
    /// Its batch.
    pub batch: String,
    /// Its steps.
    pub steps: StepSummary,
    /// Its last error, if any.
    pub error: Option<JobError>,
}

impl From<&JobSnapshot> for LoginJob {
    fn from(job: &JobSnapshot) -> Self {
        LoginJob {
            id: job.id.to_string(),
            product: job.product.as_str().into(),
            state: job.state.as_str().into(),
            batch: job.batch.clone(),
            steps: StepSummary {
                created_ms: job.created_ms,
                started_ms: job.started_ms,
                updated_ms: job.updated_ms,
                finished_ms: job.finished_ms,
                deadline_ms: job.deadline_ms,
                stage: job.stage,
                polls: job.polls,
                auths: job.auths,
                sessions: job.sessions,
                retries: job.retries,
                last_step: job.last.clone(),
            },
            error: job.error.as_ref().map(|e| JobError {
                code: e.code.clone(),
                http_status: e.http_status,
                message: e.message.clone(),
            }),
        }
    }
}

/// A login's jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginJobs {
    /// The loginId.
    pub login: String,
    /// Its newest job of every product it has one of, newest first.
    pub jobs: Vec<LoginJob>,
}

/// `?product=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// The Flinks product (default: `investments`; on a cancel it wins over
    /// the body's).
    #[param(inline, value_type = Option<ProductName>)]
    pub product: Option<String>,
}

/// Optional body of a cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The Flinks product (default: `investments`; `?product=` also works).
    #[serde(default)]
    #[schema(value_type = Option<ProductName>)]
    pub product: Option<String>,
}

/// What a cancel did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    /// The cancelled job.
    pub cancelled: String,
    /// Its product.
    pub product: String,
}

/// Every job of a login (its newest of each product), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/logins/{loginId}/jobs",
    tag = "logins",
    params(("loginId" = inline(LoginIdText), Path, description = "The loginId (UUID)")),
    responses(
        (status = 200, description = "Its jobs (empty when it has none)", body = LoginJobs),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 422, description = "Not a loginId", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn jobs(
    _: Reader,
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> JsonOk<LoginJobs> {
    let login = login_of(&login)?;
    let jobs = state.store.login_jobs(&login).await?;
    Ok(Json(LoginJobs {
        login: login.to_string(),
        jobs: jobs.iter().map(LoginJob::from).collect(),
    }))
}

/// The login's newest stored payload of a product, as Flinks sent it.
#[utoipa::path(
    get,
    path = "/api/v1/logins/{loginId}/results/{product}",
    tag = "logins",
    params(
        ("loginId" = inline(LoginIdText), Path, description = "The loginId (UUID)"),
        ("product" = inline(ProductName), Path, description = "The Flinks product"),
    ),
    responses(
        (status = 200, description = "The payload (JSON, as Flinks sent it)", content_type = "application/json"),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token: payloads need the full token", body = ErrorBody),
        (status = 404, description = "No stored result (no job, unfinished, failed or expired)", body = ErrorBody),
        (status = 422, description = "Not a loginId, or unknown product", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn result(
    _: Operator,
    State(state): State<AppState>,
    Path((login, product)): Path<(String, String)>,
) -> Result<Response, ServeError> {
    let login = login_of(&login)?;
    let product: Product = product.parse()?;
    let (stored, _) = crate::result::find(&state.store, &login, product).await?;
    let payload = tokio::task::spawn_blocking({
        let store = state.store.clone();
        move || crate::result::read_payload(&store, &login, product, &stored)
    })
    .await
    .map_err(|e| ServeError::BadRequest(format!("reading the payload stopped: {e}")))??;
    Ok(([(header::CONTENT_TYPE, "application/json")], payload).into_response())
}

/// Cancels the login's unfinished job of a product; a worker holding it
/// stops at its next step.
#[utoipa::path(
    post,
    path = "/api/v1/logins/{loginId}/cancel",
    tag = "logins",
    params(("loginId" = inline(LoginIdText), Path, description = "The loginId (UUID)"), ProductQuery),
    request_body(content = Option<CancelRequest>, description = "Optional: the product (or ?product=)"),
    responses(
        (status = 200, description = "Cancelled", body = Cancelled),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 403, description = "Read-only token", body = ErrorBody),
        (status = 404, description = "No unfinished job of that product", body = ErrorBody),
        (status = 413, description = "Body over FLINKQ_SERVE_MAX_BODY", body = ErrorBody),
        (status = 415, description = "A body that is not application/json", body = ErrorBody),
        (status = 422, description = "Not a loginId, or unknown product", body = ErrorBody),
        (status = 503, description = "Redis does not answer", body = ErrorBody),
    )
)]
pub async fn cancel(
    _: Operator,
    State(state): State<AppState>,
    Path(login): Path<String>,
    Query(query): Query<ProductQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> JsonOk<Cancelled> {
    let login = login_of(&login)?;
    let from_body = optional_json::<CancelRequest>(&headers, &body)?.and_then(|b| b.product);
    // both are checked; ?product= wins over the body's (the answer names
    // the product cancelled)
    let from_query = product_filter(query.product.as_deref())?;
    let from_body = product_filter(from_body.as_deref())?;
    let product = from_query.or(from_body).unwrap_or_default();
    match state.store.cancel(&login, product).await? {
        Some(id) => Ok(Json(Cancelled {
            cancelled: id.to_string(),
            product: product.as_str().into(),
        })),
        None => Err(ServeError::NotFound(format!(
            "loginId {login} has no unfinished {product} job to cancel (another product: ?product=NAME)"
        ))),
    }
}

/// A body that may be absent: empty is `None`; otherwise it must be JSON.
fn optional_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<T>, ServeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ServeError::UnsupportedMediaType);
    }
    // `null` is an absent body too
    serde_json::from_slice::<Option<T>>(body).map_err(|e| {
        if e.is_data() {
            ServeError::Invalid(format!(
                "{e}: see the request schema in /api/v1/openapi.json"
            ))
        } else {
            ServeError::BadRequest(format!("the body is not JSON: {e}"))
        }
    })
}
