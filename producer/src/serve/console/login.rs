//! One login: every job of it by product, their steps, the last error in
//! plain words, cancel (full token), and the payload on an explicit click
//! (full token).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use flinkq_shared::{JobState, Product};
use maud::html;

use super::codes::plain_words;
use super::{PageResult, Viewer, checked_post, csrf_field, field, html_response, layout, when};
use crate::serve::AppState;
use crate::serve::api::login_of;
use crate::serve::auth::Access;
use crate::serve::error::ServeError;

/// `GET /logins/{login}`.
pub async fn page(
    Viewer(session): Viewer,
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> PageResult {
    let login = login_of(&login)?;
    let jobs = state.store.login_jobs(&login).await?;
    let full = session.access == Access::Full;
    let body = html! {
        @if jobs.is_empty() { p { "This loginId has no job." } }
        @for job in &jobs {
            section class="job" {
                h2 { (job.product.as_str()) " · " (job.state.as_str()) }
                table {
                    tbody {
                        tr { th { "job id" } td { code { (job.id.to_string()) } } }
                        tr { th { "batch" } td { a href={ "/batches/" (job.batch) } { (job.batch) } } }
                        tr { th { "enqueued" } td { (when(job.created_ms)) } }
                        @if let Some(ms) = job.started_ms { tr { th { "started" } td { (when(ms)) } } }
                        @if let Some(ms) = job.finished_ms { tr { th { "finished" } td { (when(ms)) } } }
                        tr { th { "steps" } td {
                            "stage " (job.stage) ", " (job.auths) " successful authorize, " (job.polls) " data calls, "
                            (job.sessions) " sessions this run, " (job.retries) " retries"
                            @if let Some(last) = &job.last { " · last: " (last) }
                        } }
                        @if let Some(error) = &job.error {
                            tr { th { "last error" } td {
                                strong { (error.code) }
                                @if let Some(status) = error.http_status { " (HTTP " (status) ")" }
                                p class="plain" { (plain_words(&error.code)) }
                                p { (error.message) }
                            } }
                        }
                    }
                }
                @if full && !job.state.is_terminal() {
                    form method="post" action={ "/logins/" (login) "/cancel" } {
                        (csrf_field(&session))
                        input type="hidden" name="product" value=(job.product.as_str());
                        button type="submit" { "Cancel this job" }
                    }
                }
                @if full && job.state == JobState::Succeeded {
                    p { a href={ "/logins/" (login) "/payload/" (job.product.as_str()) } { "Show the payload" } }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout(&format!("Login {login}"), Some(&session), body),
    ))
}

/// `POST /logins/{login}/cancel` (`product`, `csrf`): full token only.
pub async fn cancel(
    State(state): State<AppState>,
    Path(login): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    checked_post(&state, &headers, &fields, Some("cancel a job"))?;
    let login = login_of(&login)?;
    let product: Product = field(&fields, "product")
        .unwrap_or_default()
        .parse()
        .map_err(ServeError::from)?;
    match state.store.cancel(&login, product).await? {
        Some(_) => Ok(Redirect::to(&format!("/logins/{login}")).into_response()),
        None => Err(ServeError::NotFound(format!(
            "loginId {login} has no unfinished {product} job to cancel (it may have just finished)"
        ))
        .into()),
    }
}

/// `GET /logins/{login}/payload/{product}`: the stored payload, full token
/// only (a read-token session gets 403 and never sees the link).
pub async fn payload(
    Viewer(session): Viewer,
    State(state): State<AppState>,
    Path((login, product)): Path<(String, String)>,
) -> PageResult {
    if session.access != Access::Full {
        return Err(ServeError::Forbidden("read payloads").into());
    }
    let login = login_of(&login)?;
    let product: Product = product.parse().map_err(ServeError::from)?;
    let (stored, _) = crate::result::find(&state.store, &login, product)
        .await
        .map_err(ServeError::from)?;
    let payload = tokio::task::spawn_blocking({
        let store = state.store.clone();
        move || crate::result::read_payload(&store, &login, product, &stored)
    })
    .await
    .map_err(|e| ServeError::BadRequest(format!("reading the payload stopped: {e}")))?
    .map_err(ServeError::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_SECURITY_POLICY, super::CONSOLE_CSP),
        ],
        payload,
    )
        .into_response())
}
