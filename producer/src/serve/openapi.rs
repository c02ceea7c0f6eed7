//! The OpenAPI 3.1 document of the API, generated from the handlers'
//! `#[utoipa::path]` annotations and the request and response types (never
//! written by hand), served at `GET /api/v1/openapi.json`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, SecurityRequirement};

use super::AppState;

/// The document's frame: title, version, the bearer scheme every
/// operation requires unless it says otherwise. The routes add the paths.
pub fn base() -> OpenApi {
    let mut api = OpenApi::default();
    api.info.title = "flinkq HTTP API".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.description = Some(
        "Enqueue Flinks fetches, follow batches, find a login's jobs, handle dead letters. \
         Authorization: Bearer <FLINKQ_API_TOKEN> (everything) or <FLINKQ_API_READ_TOKEN> \
         (reads without payloads)."
            .into(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    api.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    api
}

/// The finished document as JSON.
pub fn render(api: OpenApi) -> String {
    api.to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}"))
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "health",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.get().cloned().unwrap_or_default(),
    )
}
