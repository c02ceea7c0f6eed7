//! Signing in with a token (the full or the read one) and out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::session::{clear_cookie, set_cookie, set_signin_cookie};
use super::{PageResult, checked_post, field, html_response, layout};
use crate::serve::AppState;

/// The form with a fresh login-CSRF pair: the page, with the cookie to set.
fn form_response(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let (nonce, token) = state.sessions.signin_pair();
    let mut response = html_response(status, form(&token, error));
    if let Ok(value) = set_signin_cookie(&nonce).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn form(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(error) = error { p class="error" { (error) } }
            form method="post" action="/signin" class="signin" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Token (FLINKQ_API_TOKEN, or FLINKQ_API_READ_TOKEN to only look)" }
                input id="token" type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /signin`.
pub async fn page(State(state): State<AppState>) -> Response {
    form_response(&state, StatusCode::OK, None)
}

/// `POST /signin`: a valid token, posted from this server's own form (its
/// login-CSRF field matching its cookie), opens a session (the token itself
/// is never stored in the cookie nor logged).
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if !state
        .sessions
        .signin_matches(&headers, field(&fields, "csrf").unwrap_or_default())
    {
        return form_response(
            &state,
            StatusCode::FORBIDDEN,
            Some(
                "This sign-in form expired or was not sent from this console: sign in again on this page.",
            ),
        );
    }
    let token = field(&fields, "token").unwrap_or_default().trim();
    let presented = format!("Bearer {token}");
    match state.tokens.access(Some(presented.as_bytes())) {
        Ok(access) if !token.is_empty() || !state.tokens.configured() => {
            let id = state.sessions.open(access);
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = set_cookie(&id).parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        _ => form_response(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid: use FLINKQ_API_TOKEN or FLINKQ_API_READ_TOKEN."),
        ),
    }
}

/// `POST /signout`.
pub async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    checked_post(&state, &headers, &fields, None)?;
    state.sessions.close(&headers);
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(value) = clear_cookie().parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
