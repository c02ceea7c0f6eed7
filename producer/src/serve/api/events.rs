//! `GET /api/v1/events`: Server-Sent Events of job finishes and batch
//! completions, read from the `results` and `events` streams as they are
//! written, so a pipeline waits for its batch without polling.
//!
//! Each event's id is the position in both streams just after it; a client
//! that reconnects with it as `Last-Event-ID` (browsers do by themselves)
//! goes on where it stopped. Without one it starts at the present. With
//! `?batch=` only that batch's events are sent, and a batch that already
//! completed is announced at once (a client that connects after its batch
//! finished still hears about it).
//!
//! Each stream reads with `XREAD BLOCK` on a Redis connection of its own
//! (a blocked read would stall a shared one), at most
//! FLINKQ_SERVE_MAX_STREAMS at once, through a bounded channel: a client
//! that stops reading stalls its own reader, nothing grows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flinkq_shared::store::{
    BatchCompleted, ResultEntry, StateCounts, Store, StoreConfig, StreamCursor, StreamEvent,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::Counts;
use crate::cli::BATCH_NAME;
use crate::serve::AppState;
use crate::serve::auth::Reader;
use crate::serve::error::{ErrorBody, ServeError};

/// Entries read per stream per `XREAD`.
const READ_COUNT: usize = 100;
/// Events buffered between the reader and a slow client.
const CHANNEL: usize = 256;

/// `?batch=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this batch's job finishes and completion.
    pub batch: Option<String>,
}

/// `event: job_finished`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobFinished {
    /// Always `job_finished`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The job.
    pub job: String,
    /// Its login.
    pub login: String,
    /// Its product.
    pub product: String,
    /// Its batch.
    pub batch: String,
    /// `succeeded`, `failed`, `timed_out` or `cancelled`.
    pub state: String,
    /// For a job that did not succeed: its last error code.
    pub error: Option<String>,
}

/// `event: batch_completed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchDone {
    /// Always `batch_completed`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The batch.
    pub batch: String,
    /// Its counts when it completed.
    pub counts: Counts,
}

/// A live feed of job finishes and batch completions (SSE).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (its id)"),
    ),
    responses(
        (status = 200, description = "text/event-stream: `event: job_finished` (data: JobFinished) and `event: batch_completed` (data: BatchDone), each with an id to resume from", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad Last-Event-ID", body = ErrorBody),
        (status = 401, description = "No or invalid token", body = ErrorBody),
        (status = 422, description = "Bad batch name", body = ErrorBody),
        (status = 503, description = "Redis does not answer, or too many open streams", body = ErrorBody),
    )
)]
pub async fn events(
    _: Reader,
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ServeError> {
    let batch = query
        .batch
        .map(|b| BATCH_NAME.check(&b).map_err(ServeError::Invalid))
        .transpose()?;
    let resume = headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ServeError::BadRequest("Last-Event-ID is not text".into()))
                .and_then(|text| Ok(text.parse::<StreamCursor>()?))
        })
        .transpose()?;
    let permit = state
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ServeError::TooManyStreams(state.max_streams))?;
    let reader = Store::connect(&StoreConfig {
        // a blocked read answers after `block` at the latest
        response_timeout: state.store_config.response_timeout + state.stream_block,
        ..(*state.store_config).clone()
    })
    .await?;
    let mut cursor = match &resume {
        Some(cursor) => cursor.clone(),
        None => state.store.stream_tails().await?,
    };
    let (tx, rx) = mpsc::channel::<Event>(CHANNEL);
    // a batch that completed before this client came: say so now
    if resume.is_none()
        && let Some(name) = &batch
        && let Some(summary) = state.store.batch_summary(name).await?
        && summary.completed_ms.is_some()
    {
        let done = batch_done(name.clone(), summary.counts);
        let _ = tx.try_send(event("batch_completed", &done, &cursor));
    }
    let shutdown = state.shutdown.clone();
    let block = state.stream_block;
    tokio::spawn(async move {
        let _permit = permit;
        tokio::select! {
            () = follow(&reader, &mut cursor, batch.as_deref(), block, &tx) => {}
            () = shutdown.cancelled() => {}
            () = tx.closed() => {}
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Reads both streams from `cursor` and sends what `batch` wants, until the
/// client goes; a Redis error ends the stream (the client reconnects with
/// its last id and loses nothing).
async fn follow(
    reader: &Store,
    cursor: &mut StreamCursor,
    batch: Option<&str>,
    block: Duration,
    tx: &mpsc::Sender<Event>,
) {
    loop {
        let before = cursor.clone();
        let events = match reader.read_streams(cursor, READ_COUNT, block).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!("event stream ends: {error}");
                return;
            }
        };
        // each event carries the position just after it
        let mut at = before;
        for entry in events {
            match &entry {
                StreamEvent::JobFinished(finished) => at.results.clone_from(&finished.id),
                StreamEvent::BatchCompleted(done) => at.events.clone_from(&done.id),
            }
            if batch.is_some_and(|b| b != entry.batch()) {
                continue;
            }
            let sse = match entry {
                StreamEvent::JobFinished(finished) => {
                    event("job_finished", &job_finished(finished), &at)
                }
                StreamEvent::BatchCompleted(BatchCompleted { batch, counts, .. }) => {
                    event("batch_completed", &batch_done(batch, counts), &at)
                }
            };
            if tx.send(sse).await.is_err() {
                return;
            }
        }
    }
}

fn event(kind: &str, data: &impl Serialize, at: &StreamCursor) -> Event {
    Event::default()
        .event(kind)
        .id(at.to_string())
        .data(serde_json::to_string(data).unwrap_or_default())
}

fn job_finished(entry: ResultEntry) -> JobFinished {
    JobFinished {
        kind: "job_finished",
        job: entry.job.to_string(),
        login: entry.login,
        product: entry.product.as_str().into(),
        batch: entry.batch,
        state: entry.state.as_str().into(),
        error: entry.error,
    }
}

fn batch_done(batch: String, counts: StateCounts) -> BatchDone {
    BatchDone {
        kind: "batch_completed",
        batch,
        counts,
    }
}
