//! The overview: jobs by state, the queue gauges, the latest batches.

use axum::extract::State;
use axum::http::StatusCode;
use maud::html;

use super::{PageResult, Viewer, finished, html_response, layout, state_rows, when};
use crate::serve::AppState;

/// `GET /`.
pub async fn page(Viewer(session): Viewer, State(state): State<AppState>) -> PageResult {
    let counts = state.store.counts(None).await?;
    let queue = state.store.queue_stats().await?;
    let batches = state.store.batches(5).await?;
    let body = html! {
        section {
            h2 { "Jobs by state" }
            table {
                tbody {
                    @for (name, count) in state_rows(&counts) {
                        tr { th { (name) } td class="num" { (count) } }
                    }
                    tr { th { "total" } td class="num" { (counts.total) } }
                }
            }
        }
        section {
            h2 { "Queue" }
            table {
                tbody {
                    tr { th { "due now" } td class="num" { (queue.due_now) } }
                    tr { th { "scheduled (retries, polls)" } td class="num" { (queue.scheduled) } }
                    tr { th { "held by workers" } td class="num" { (queue.leased) } }
                    tr { th { "dead letters" } td class="num" { a href="/dead" { (queue.dead) } } }
                    tr { th { "enqueued ever" } td class="num" { (queue.enqueued_total) } }
                }
            }
        }
        section {
            h2 { "Latest batches" }
            @if batches.is_empty() { p { "No batch yet." } }
            ul class="batches" {
                @for batch in &batches {
                    li {
                        a href={ "/batches/" (batch.name) } { (batch.name) }
                        " "
                        progress value=(finished(&batch.counts)) max=(batch.counts.total.max(1)) {}
                        " " (finished(&batch.counts)) "/" (batch.counts.total)
                        " · " (when(batch.created_ms))
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout("Overview", Some(&session), body),
    ))
}
