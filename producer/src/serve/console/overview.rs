//! The overview: jobs by state and product, the queue, throughput of the
//! last hour, workers seen, the latest batches.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use maud::html;

use super::{PageResult, Viewer, finished, html_response, layout, state_rows, when};
use crate::serve::AppState;

/// Jobs read at most from each set for the by-product table.
const BY_PRODUCT_READ: usize = 5_000;
/// The throughput window.
const HOUR: Duration = Duration::from_secs(3600);
/// A worker seen within this is listed.
const WORKERS_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Workers listed at most.
const WORKERS_SHOWN: usize = 100;

/// `GET /`.
pub async fn page(Viewer(session): Viewer, State(state): State<AppState>) -> PageResult {
    let store = &state.store;
    let counts = store.counts(None).await?;
    let by_product = store.jobs_by_product(BY_PRODUCT_READ).await?;
    let queue = store.queue_stats().await?;
    let now = store.time_ms().await?;
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (finished_hour, dead_hour) = store.finished_since(now.saturating_sub(ms(HOUR))).await?;
    let workers = store
        .workers_seen(now.saturating_sub(ms(WORKERS_WINDOW)), WORKERS_SHOWN)
        .await?;
    let batches = store.batches(5).await?;
    let states = state_rows(&counts);
    let body = html! {
        section {
            h2 { "Jobs by state and product" }
            div class="scroll" {
                table id="by-product" {
                    thead {
                        tr {
                            th { "product" }
                            @for (name, _) in &states { th class="num" { (name) } }
                            th class="num" { "total" }
                        }
                    }
                    tbody {
                        @for (product, row) in &by_product.products {
                            tr {
                                th { (product.as_str()) }
                                @for (_, count) in state_rows(row) { td class="num" { (count) } }
                                td class="num" { (row.total) }
                            }
                        }
                    }
                    tfoot {
                        tr {
                            th { "all products" }
                            @for (_, count) in &states { td class="num" { (count) } }
                            td class="num" { (counts.total) }
                        }
                    }
                }
            }
            @if !by_product.complete {
                p class="plain" { "Per product: counted from the newest " (BY_PRODUCT_READ) " jobs of each queue and of the finished jobs; the all-products row is exact." }
            }
        }
        section {
            h2 { "Queue" }
            table {
                tbody {
                    tr { th { "queue depth (due now)" } td class="num" id="due-now" { (queue.due_now) } }
                    tr { th { "scheduled (retries, polls)" } td class="num" { (queue.scheduled) } }
                    tr { th { "held by workers" } td class="num" { (queue.leased) } }
                    tr { th { "dead letters" } td class="num" { a href="/dead" { (queue.dead) } } }
                    tr { th { "enqueued ever" } td class="num" { (queue.enqueued_total) } }
                }
            }
        }
        section {
            h2 { "Last hour" }
            table {
                tbody {
                    tr { th { "jobs finished" } td class="num" id="finished-hour" { (finished_hour) } }
                    tr { th { "of which failed or timed out" } td class="num" { (dead_hour) } }
                }
            }
        }
        section {
            h2 { "Workers seen (last 15 minutes)" }
            @if workers.is_empty() { p id="workers" { "No worker seen." } }
            @else {
                table id="workers" {
                    thead { tr { th { "worker (host:pid)" } th { "last seen" } } }
                    tbody {
                        @for (name, seen) in &workers {
                            tr { td { code { (name) } } td { (when(*seen)) } }
                        }
                    }
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
