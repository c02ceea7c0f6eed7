//! The HTTP routes: Authorize, every product's endpoints and the `/_sim`
//! control routes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{MethodRouter, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Shared;
use super::config::{Script, SimConfig};
use super::product::{CallKind, Product};
use super::state::{Answer, ProductCall, SimState, error};

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

/// The body of GetAccountsDetail, GetAccountsSummary and GetStatements; their
/// optional flags (`NumberOfStatements`, days of history…) are accepted and
/// ignored.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BankingBody {
    request_id: String,
}

/// The simulator's routes. The wealth base (Investments) and the banking
/// base are one `/v3/{customer}` here: the real hosts differ, the paths don't.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3/{customer}/BankingServices/Authorize", post(authorize))
        .route("/v3/{customer}/Investments", post(investments))
        .route(
            "/v3/{customer}/BankingServices/GetAccountsDetail",
            first_call(Product::AccountsDetail),
        )
        .route(
            "/v3/{customer}/BankingServices/GetAccountsDetailAsync/{request_id}",
            async_poll(Product::AccountsDetail),
        )
        .route(
            "/v3/{customer}/BankingServices/GetAccountsSummary",
            first_call(Product::AccountsSummary),
        )
        .route(
            "/v3/{customer}/BankingServices/GetAccountsSummaryAsync/{request_id}",
            async_poll(Product::AccountsSummary),
        )
        .route(
            "/v3/{customer}/BankingServices/GetStatements",
            first_call(Product::Statements),
        )
        .route(
            "/v3/{customer}/insight/login/{login}/attributes/{request_id}/GetAllAttributes",
            get(attributes),
        )
        .route("/_sim/stats", get(stats))
        .route("/_sim/scripts/{login}", put(set_script))
        .with_state(shared)
}

/// The route of a banking product's first call.
fn first_call(product: Product) -> MethodRouter<Arc<Shared>> {
    post(
        move |state: State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
            banking(state, headers, body, product)
        },
    )
}

/// The route of a `GetAsync` product's `…Async/{RequestId}` poll.
fn async_poll(product: Product) -> MethodRouter<Arc<Shared>> {
    get(
        move |state: State<Arc<Shared>>, path: Path<(String, String)>, headers: HeaderMap| {
            poll_async(state, path, headers, product)
        },
    )
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
        parse::<AuthorizeBody>(&body, "Authorize"),
        |state, config, body, has_key, now| state.authorize(config, &body.login_id, has_key, now),
    )
    .await
}

async fn investments(
    State(shared): State<Arc<Shared>>,
    Path(_customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = parse::<InvestmentsBody>(&body, "Investments").map(|body| ProductCall {
        product: Product::Investments,
        kind: CallKind::First,
        request_id: body.request_id,
        login: Some(body.login_id),
    });
    handle(&shared, &headers, parsed, product_call).await
}

/// The first call of GetAccountsDetail, GetAccountsSummary or GetStatements.
async fn banking(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
    product: Product,
) -> Response {
    let parsed = parse::<BankingBody>(&body, product.as_str()).map(|body| ProductCall {
        product,
        kind: CallKind::First,
        request_id: body.request_id,
        login: None,
    });
    handle(&shared, &headers, parsed, product_call).await
}

/// `GET …Async/{RequestId}`: no body, the session in the path.
async fn poll_async(
    State(shared): State<Arc<Shared>>,
    Path((_customer, request_id)): Path<(String, String)>,
    headers: HeaderMap,
    product: Product,
) -> Response {
    let call = ProductCall {
        product,
        kind: CallKind::Async,
        request_id,
        login: None,
    };
    handle(&shared, &headers, Ok(call), product_call).await
}

async fn attributes(
    State(shared): State<Arc<Shared>>,
    Path((_customer, login, request_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let call = ProductCall {
        product: Product::Attributes,
        kind: CallKind::First,
        request_id,
        login: Some(login),
    };
    handle(&shared, &headers, Ok(call), product_call).await
}

fn product_call(
    state: &mut SimState,
    config: &SimConfig,
    call: ProductCall,
    has_key: bool,
    now: Instant,
) -> Answer {
    state.product_call(config, &call, has_key, now)
}

/// The request's JSON body, or why it is not one.
fn parse<B: DeserializeOwned>(body: &Bytes, what: &str) -> Result<B, String> {
    serde_json::from_slice::<B>(body).map_err(|e| format!("Malformed {what} body: {e}"))
}

/// Checks the key, takes the parsed request, and lets `answer` decide —
/// under the lock, which is released before the answer is sent (slow
/// answers sleep without blocking other requests).
async fn handle<B>(
    shared: &Shared,
    headers: &HeaderMap,
    parsed: Result<B, String>,
    answer: impl FnOnce(&mut SimState, &SimConfig, B, bool, Instant) -> Answer,
) -> Response {
    let now = Instant::now();
    let (has_key, refused) = check_key(shared, headers);
    let decided = {
        let mut state = shared.lock();
        state.arrived(now);
        match (refused, parsed) {
            (Some(refusal), _) => {
                state.reject();
                refusal
            }
            (None, Ok(request)) => answer(&mut state, &shared.config, request, has_key, now),
            (None, Err(why)) => {
                state.reject();
                error(400, "INVALID_REQUEST", &why, None)
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
