//! Batches: the list, and one batch's counts and progress (live with
//! JavaScript through the event stream, a reload without).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::html;

use super::{PageResult, Viewer, finished, html_response, layout, state_rows, when};
use crate::serve::AppState;
use crate::serve::error::ServeError;

/// `GET /batches`: the 100 newest.
pub async fn list(Viewer(session): Viewer, State(state): State<AppState>) -> PageResult {
    let batches = state.store.batches(100).await?;
    let body = html! {
        @if batches.is_empty() { p { "No batch yet." } }
        table {
            thead { tr { th { "batch" } th { "progress" } th { "failed" } th { "created" } th { "completed" } } }
            tbody {
                @for batch in &batches {
                    tr {
                        td { a href={ "/batches/" (batch.name) } { (batch.name) } }
                        td {
                            progress value=(finished(&batch.counts)) max=(batch.counts.total.max(1)) {}
                            " " (finished(&batch.counts)) "/" (batch.counts.total)
                        }
                        td class="num" { (batch.counts.failed + batch.counts.timed_out) }
                        td { (when(batch.created_ms)) }
                        td { @if let Some(ms) = batch.completed_ms { (when(ms)) } @else { "—" } }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout("Batches", Some(&session), body),
    ))
}

/// `GET /batches/{batch}`.
pub async fn one(
    Viewer(session): Viewer,
    State(state): State<AppState>,
    Path(batch): Path<String>,
) -> PageResult {
    let summary = state
        .store
        .batch_summary(&batch)
        .await?
        .ok_or_else(|| ServeError::NotFound(format!("no batch named {batch:?}")))?;
    let counts = &summary.counts;
    let body = html! {
        section id="batch" data-batch=(summary.name) {
            p {
                progress id="progress" value=(finished(counts)) max=(counts.total.max(1)) {}
                " " span id="done" { (finished(counts)) } "/" span id="total" { (counts.total) } " finished"
            }
            table {
                tbody {
                    @for (name, count) in state_rows(counts) {
                        tr { th { (name) } td class="num" id={ "count-" (name) } { (count) } }
                    }
                }
            }
            p { "Created " (when(summary.created_ms)) }
            p id="completed" {
                @if let Some(ms) = summary.completed_ms { "Completed " (when(ms)) }
                @else { "Not complete yet (live with JavaScript, or reload)." }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout(&format!("Batch {}", summary.name), Some(&session), body),
    ))
}
