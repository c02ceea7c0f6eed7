//! The `/api/v1` router: one file per resource, the headers every response
//! carries, and JSON bodies for what axum refuses by itself (unknown path,
//! wrong method, a path or query that does not parse).

pub mod batches;
pub mod dead;
pub mod events;
pub mod health;
pub mod logins;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use flinkq_shared::{LoginId, Product};
use serde::de::DeserializeOwned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ErrorBody, ServeError};
use super::openapi;

/// The Content-Security-Policy of every API response: JSON is never a
/// page, so nothing may load, frame or submit from it. (Console pages set
/// their own, as strict, before this layer sees them.)
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The application: the API routes, their OpenAPI document, the limits
/// and the headers.
pub fn app(state: AppState) -> Router {
    let (router, document) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::health))
        .routes(routes!(openapi::document))
        .routes(routes!(batches::enqueue))
        .routes(routes!(batches::list))
        .routes(routes!(batches::one))
        .routes(routes!(logins::jobs))
        .routes(routes!(logins::result))
        .routes(routes!(logins::cancel))
        .routes(routes!(dead::retry))
        .routes(routes!(dead::purge))
        .routes(routes!(events::events))
        .split_for_parts();
    let rendered = openapi::render(document);
    let _ = state.openapi.set(rendered);
    let max_body = state.max_body;
    router
        .merge(super::console::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
}

async fn not_found() -> ServeError {
    ServeError::NotFound(
        "no such endpoint: the API lives under /api/v1 (see /api/v1/openapi.json)".into(),
    )
}

/// Strict headers on every response, errors included.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        // answers carry job data: no shared cache keeps them
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Error responses axum builds itself (405, a path or query that does not
/// parse, a body over the limit read by an extractor) are plain text: they
/// become `{"error": …}` like ours.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // console pages (HTML) carry their own error pages
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "method not allowed on this path: the Allow header lists those that are (see /api/v1/openapi.json)".to_owned()
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
        _ => format!("{text} (see /api/v1/openapi.json)"),
    };
    let body = serde_json::to_vec(&ErrorBody::message(message)).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// A JSON request body, refused as [`ServeError`] (413, 415, 400, 422)
/// rather than axum's plain text.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ServeError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ServeError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ServeError::from_json(rejection, state.max_body)),
        }
    }
}

/// A JSON response.
pub type JsonOk<T> = Result<axum::Json<T>, ServeError>;

/// Per-state job counts: the store's own type, documented as `Counts`.
pub use flinkq_shared::store::StateCounts as Counts;

/// The loginId rule as a pattern, for the OpenAPI document: a hyphenated
/// UUID (what `LoginId::parse` accepts).
pub const LOGIN_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The batch name rule (`BATCH_NAME`) as a pattern.
pub const BATCH_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// A Flinks product name: the document lists the products of the table
/// (read when the document is built, so a sixth product appears by itself).
#[derive(Debug)]
pub struct ProductName;

impl utoipa::PartialSchema for ProductName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Product::all().map(|p| p.as_str())))
            .description(Some("A Flinks product"))
            .into()
    }
}

impl ToSchema for ProductName {}

/// A loginId in a list: a hyphenated UUID.
#[derive(Debug)]
pub struct LoginIdText;

impl utoipa::PartialSchema for LoginIdText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(LOGIN_PATTERN))
            .examples(["5e115eac-1209-4f19-641c-08d6d484e2fe"])
            .into()
    }
}

impl ToSchema for LoginIdText {}

/// A batch name: 1-64 letters, digits, '-', '_' or '.'.
#[derive(Debug)]
pub struct BatchNameText;

impl utoipa::PartialSchema for BatchNameText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(BATCH_PATTERN))
            .examples(["nightly-2026-11-25"])
            .into()
    }
}

impl ToSchema for BatchNameText {}

/// A loginId from a path.
pub fn login_of(text: &str) -> Result<LoginId, ServeError> {
    LoginId::parse(text).map_err(|e| ServeError::Invalid(format!("{e}: a loginId is a UUID")))
}

/// A product name (the table's), or the default when absent.
pub fn product_or_default(name: Option<&str>) -> Result<Product, ServeError> {
    name.map_or(Ok(Product::DEFAULT), |name| Ok(name.parse::<Product>()?))
}

/// `Some(product)` for a given name, `None` for absent (every product).
pub fn product_filter(name: Option<&str>) -> Result<Option<Product>, ServeError> {
    name.map(|name| name.parse::<Product>().map_err(ServeError::from))
        .transpose()
}
