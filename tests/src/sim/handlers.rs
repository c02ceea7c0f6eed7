//! The HTTP routes: the two Flinks endpoints and the `/_sim` control routes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Shared;
use super::config::{Script, SimConfig};
use super::state::{Answer, SimState, error};

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

async fn reply(answer: Answer) -> Response {
    match answer {
        Answer::Json {
            status,
            body,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (status, Json(body)).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Answer::Malformed => (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/json")],
            "{\"HttpStatusCode\": 200, \"Investments\": [ {\"Accounts\": [",
        )
            .into_response(),
        Answer::Reset => {
            // Headers go out, then the body stream fails: hyper aborts the
            // connection and the client sees it cut mid-answer.
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                ))
            });
            (StatusCode::OK, Body::from_stream(broken)).into_response()
        }
        Answer::Hostile(hostile) => hostile.into_response(),
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"HttpStatusCode": 503, "Message": "Injected slow answer"})),
            )
                .into_response()
        }
    }
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
    handle(
        &shared,
        &headers,
        &body,
        "Authorize",
        |state, config, body: AuthorizeBody, has_key, now| {
            state.authorize(config, &body.login_id, has_key, now)
        },
    )
    .await
}

async fn investments(
    State(shared): State<Arc<Shared>>,
    Path(_customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(
        &shared,
        &headers,
        &body,
        "Investments",
        |state, config, body: InvestmentsBody, has_key, now| {
            state.investments(config, &body.request_id, &body.login_id, has_key, now)
        },
    )
    .await
}

/// Checks the key, parses the body, and lets `answer` decide — under the
/// lock, which is released before the answer is sent (slow answers sleep
/// without blocking other requests).
async fn handle<B: DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    what: &str,
    answer: impl FnOnce(&mut SimState, &SimConfig, B, bool, Instant) -> Answer,
) -> Response {
    let now = Instant::now();
    let (has_key, refused) = check_key(shared, headers);
    let decided = {
        let mut state = shared.lock();
        state.arrived(now);
        match (refused, serde_json::from_slice::<B>(body)) {
            (Some(refusal), _) => {
                state.reject();
                refusal
            }
            (None, Ok(body)) => answer(&mut state, &shared.config, body, has_key, now),
            (None, Err(e)) => {
                state.reject();
                error(
                    400,
                    "INVALID_REQUEST",
                    &format!("Malformed {what} body: {e}"),
                    None,
                )
            }
        }
    };
    reply(decided).await
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
