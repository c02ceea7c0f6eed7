//! `flinkq enqueue`: validated input, enqueued in pipelined chunks, with a
//! progress bar on a terminal.

use std::io::{IsTerminal, Write};

use flinkq_shared::store::{ENQUEUE_CHUNK, EnqueueReport, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::EnqueueArgs;
use crate::error::CliError;
use crate::input::LoginInput;

/// Enqueue scripts sent together in one pipelined round trip.
const CHUNKS_PER_ROUND_TRIP: usize = 8;

/// What `flinkq enqueue` reports.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// The batch.
    pub batch: String,
    /// New jobs.
    pub enqueued: u64,
    /// Logins that already had an unfinished job (in another batch).
    pub already_active: u64,
    /// Logins whose newest job already belongs to this batch (an enqueue
    /// run twice): not enqueued again.
    pub already_in_batch: u64,
    /// Repeated loginIds in the input.
    pub duplicates: u64,
    /// Rejected lines.
    pub invalid: u64,
}

/// Runs `flinkq enqueue` on a validated input, reading it back from its
/// spool a round trip's worth at a time.
pub async fn run(
    store: &Store,
    args: &EnqueueArgs,
    mut input: LoginInput,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let batch = args
        .batch
        .clone()
        .unwrap_or_else(crate::batch_name::generate);
    let bar = progress_bar(input.unique);
    let mut report = EnqueueReport::default();
    let mut sent = 0;
    while let Some(logins) = input.next_chunk(ENQUEUE_CHUNK * CHUNKS_PER_ROUND_TRIP)? {
        report += store
            .enqueue_with(&batch, args.priority, &logins)
            .await
            .map_err(|source| CliError::EnqueueInterrupted {
                batch: batch.clone(),
                done: sent,
                total: input.unique,
                source,
            })?;
        sent += logins.len() as u64;
        if let Some(bar) = &bar {
            bar.inc(logins.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if report.enqueued == 0 && report.already_in_batch > 0 {
        eprintln!(
            "flinkq: note: {} login(s) already have a job in batch {batch}, so nothing was enqueued again; a batch is one run: use a new --batch name to fetch them again",
            report.already_in_batch
        );
    }
    let summary = EnqueueSummary {
        batch,
        enqueued: report.enqueued,
        already_active: report.already_active,
        already_in_batch: report.already_in_batch,
        duplicates: input.duplicates,
        invalid: input.invalid_count,
    };
    if args.json {
        serde_json::to_writer(&mut *out, &summary).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "enqueued {}, already active {}, already in batch {}, duplicates {}, invalid {} (batch {})",
            summary.enqueued,
            summary.already_active,
            summary.already_in_batch,
            summary.duplicates,
            summary.invalid,
            summary.batch
        )?;
    }
    Ok(())
}

/// A bar on stderr when it is a terminal and the input is large enough to
/// watch; `None` otherwise (plain output in pipelines and logs).
fn progress_bar(len: u64) -> Option<ProgressBar> {
    if len < (ENQUEUE_CHUNK * CHUNKS_PER_ROUND_TRIP) as u64 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("enqueue {bar:40} {pos}/{len} logins {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}
