//! The console: server-rendered pages under `/` beside the API, on the
//! same state and tokens. Every page works with JavaScript off; the one
//! script (embedded in the binary, served from `/assets/`) only makes batch
//! progress live.
//!
//! - [`session`]: sign-in sessions and CSRF tokens.
//! - [`signin`]: the sign-in form, sign-out.
//! - [`overview`], [`search`], [`batches`], [`login`], [`dead`]: one page each.
//! - [`codes`]: FlinksCodes in plain words.

pub mod batches;
pub mod codes;
pub mod dead;
pub mod login;
pub mod overview;
pub mod search;
pub mod session;
pub mod signin;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use super::AppState;
use super::auth::Access;
use super::error::ServeError;
use session::Session;

/// The Content-Security-Policy of every console page: scripts, styles and
/// connections only from this server, no inline script or style, forms
/// only to this server, never framed.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/signin", get(signin::page).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/search", get(search::go))
        .route("/batches", get(batches::list))
        .route("/batches/{batch}", get(batches::one))
        .route("/logins/{login}", get(login::page))
        .route("/logins/{login}/cancel", post(login::cancel))
        .route("/logins/{login}/payload/{product}", get(login::payload))
        .route("/dead", get(dead::page))
        .route("/dead/action", post(dead::action))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A rendered page with the console's headers.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    response
}

/// The frame of every page: title, navigation, search box, sign-out.
pub fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · flinkq" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                @if let Some(session) = session {
                    header {
                        nav {
                            a href="/" { "Overview" }
                            a href="/batches" { "Batches" }
                            a href="/dead" { "Dead letters" }
                        }
                        form method="get" action="/search" class="search" {
                            input type="search" name="q" placeholder="loginId, batch or job id" aria-label="Search";
                            button type="submit" { "Go" }
                        }
                        form method="post" action="/signout" class="signout" {
                            (csrf_field(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A console failure as a page.
#[derive(Debug)]
pub enum PageError {
    /// No session: go sign in (GET), or 403 (POST).
    SignIn,
    /// A refused or failed request.
    Serve(ServeError),
}

impl From<ServeError> for PageError {
    fn from(error: ServeError) -> Self {
        PageError::Serve(error)
    }
}

impl From<flinkq_shared::store::StoreError> for PageError {
    fn from(error: flinkq_shared::store::StoreError) -> Self {
        PageError::Serve(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn => Redirect::to("/signin").into_response(),
            PageError::Serve(error) => {
                let status = error.status();
                if status.is_server_error() {
                    tracing::warn!(%status, "{error}");
                }
                let body = html! {
                    p class="error" { (error.to_string()) }
                    p { a href="/" { "Back to the overview" } }
                };
                html_response(status, layout("Refused", None, body))
            }
        }
    }
}

/// A result of a page handler.
pub type PageResult = Result<Response, PageError>;

/// A signed-in browser (any token); without a session, a redirect to the
/// sign-in form.
#[derive(Debug, Clone)]
pub struct Viewer(pub Session);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        state
            .sessions
            .of(&parts.headers)
            .map(Viewer)
            .ok_or(PageError::SignIn)
    }
}

/// Checks a form POST: an open session (else 403), its CSRF token in the
/// `csrf` field (else 403), and the full token when `action` is `Some`.
pub fn checked_post(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
    action: Option<&'static str>,
) -> Result<Session, PageError> {
    let session = state
        .sessions
        .of(headers)
        .ok_or(ServeError::Forbidden("post a form without signing in"))?;
    let csrf = field(fields, "csrf").unwrap_or_default();
    if !session.csrf_matches(csrf) {
        return Err(ServeError::BadCsrf.into());
    }
    if let Some(action) = action
        && session.access != Access::Full
    {
        return Err(ServeError::Forbidden(action).into());
    }
    Ok(session)
}

/// The first value of a form field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A timestamp (ms since the epoch) as UTC text.
pub fn when(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// The states of a count table, in order, with their counts.
pub fn state_rows(counts: &flinkq_shared::store::StateCounts) -> [(&'static str, u64); 7] {
    [
        ("queued", counts.queued),
        ("authorizing", counts.authorizing),
        ("polling", counts.polling),
        ("succeeded", counts.succeeded),
        ("failed", counts.failed),
        ("timed_out", counts.timed_out),
        ("cancelled", counts.cancelled),
    ]
}

/// Finished jobs out of all, for a progress bar.
pub fn finished(counts: &flinkq_shared::store::StateCounts) -> u64 {
    counts.succeeded + counts.failed + counts.timed_out + counts.cancelled
}
