//! The HTTP routes: the two Flinks endpoints and the `/_sim` control routes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::config::Script;
use super::state::{Answer, error};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AuthorizeBody {
    login_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InvestmentsBody {
    request_id: String,
    login_id: String,
}

/// The simulator's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3/{customer}/BankingServices/Authorize", post(authorize))
        .route("/v3/{customer}/Investments", post(investments))
        .route("/_sim/stats", get(stats))
        .route("/_sim/scripts/{login}", put(set_script))
        .with_state(shared)
}

fn reply((status, body): Answer) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// `None` when the key is right or not required; the 401 otherwise.
fn check_key(shared: &Shared, headers: &HeaderMap) -> (bool, Option<Answer>) {
    let sent = headers.get("flinks-auth-key").and_then(|v| v.to_str().ok());
    let refused = match (&shared.config.auth_key, sent) {
        (Some(expected), Some(sent)) if expected == sent => None,
        (Some(_), _) => Some(error(
            401,
            "UNAUTHORIZED",
            "Missing or wrong flinks-auth-key",
            None,
        )),
        (None, _) => None,
    };
    (sent.is_some(), refused)
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(_customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let (has_key, refused) = check_key(&shared, &headers);
    let mut state = shared.lock();
    if let Some(answer) = refused {
        state.reject();
        return reply(answer);
    }
    match serde_json::from_slice::<AuthorizeBody>(&body) {
        Ok(body) => reply(state.authorize(&shared.config, &body.login_id, has_key, now)),
        Err(e) => {
            state.reject();
            reply(error(
                400,
                "INVALID_REQUEST",
                &format!("Malformed Authorize body: {e}"),
                None,
            ))
        }
    }
}

async fn investments(
    State(shared): State<Arc<Shared>>,
    Path(_customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let (has_key, refused) = check_key(&shared, &headers);
    let mut state = shared.lock();
    if let Some(answer) = refused {
        state.reject();
        return reply(answer);
    }
    match serde_json::from_slice::<InvestmentsBody>(&body) {
        Ok(body) => reply(state.investments(
            &shared.config,
            &body.request_id,
            &body.login_id,
            has_key,
            now,
        )),
        Err(e) => {
            state.reject();
            reply(error(
                400,
                "INVALID_REQUEST",
                &format!("Malformed Investments body: {e}"),
                None,
            ))
        }
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let state = shared.lock();
    Json(json!({"totals": state.totals(), "violations": state.violations()})).into_response()
}

async fn set_script(
    State(shared): State<Arc<Shared>>,
    Path(login): Path<String>,
    Json(script): Json<Script>,
) -> StatusCode {
    shared.lock().set_script(login, script);
    StatusCode::NO_CONTENT
}
