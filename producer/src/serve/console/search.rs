//! The search box: a job id or a loginId goes to the login's page, a batch
//! name to the batch's.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use flinkq_shared::{JobId, LoginId};
use maud::html;
use serde::Deserialize;

use super::{PageResult, Viewer, html_response, layout};
use crate::serve::AppState;

/// `?q=`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// What was typed.
    #[serde(default)]
    pub q: String,
}

/// Is this a batch name (1-64 letters, digits, '-', '_' or '.')?
fn batch_like(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `GET /search?q=`.
pub async fn go(
    Viewer(session): Viewer,
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let text = query.q.trim();
    // a job id and a loginId are both UUIDs: a job of that id wins
    if let Ok(id) = text.parse::<JobId>()
        && let Some(job) = state.store.job(id).await?
    {
        return Ok(Redirect::to(&format!("/logins/{}", job.login)).into_response());
    }
    if let Ok(login) = LoginId::parse(text) {
        return Ok(Redirect::to(&format!("/logins/{login}")).into_response());
    }
    if batch_like(text) && state.store.batch_summary(text).await?.is_some() {
        return Ok(Redirect::to(&format!("/batches/{text}")).into_response());
    }
    let body = html! {
        p { "Nothing matches " code { (text) } ": type a loginId, a job id or a batch name." }
    };
    Ok(html_response(
        StatusCode::NOT_FOUND,
        layout("Not found", Some(&session), body),
    ))
}
