//! `flinkq enqueue`: validated input, enqueued in pipelined chunks, with a
//! progress bar on a terminal.

use std::io::{IsTerminal, Write};

use flinkq_shared::Product;
use flinkq_shared::store::{ENQUEUE_CHUNK, EnqueueReport, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::cli::EnqueueArgs;
use crate::error::CliError;
use crate::input::LoginInput;
use crate::redis_retry;

/// Enqueue scripts sent together in one pipelined round trip.
const CHUNKS_PER_ROUND_TRIP: usize = 8;

/// What `flinkq enqueue` reports.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// The batch.
    pub batch: String,
    /// The product every job of this enqueue fetches.
    pub product: Product,
    /// New jobs.
    pub enqueued: u64,
    /// Logins that already had an unfinished job of the product (in
    /// another batch).
    pub already_active: u64,
    /// Logins whose newest job already belongs to this batch (an enqueue
    /// run twice): not enqueued again.
    pub already_in_batch: u64,
    /// Repeated loginIds in the input.
    pub duplicates: u64,
    /// Rejected lines.
    pub invalid: u64,
}

/// What an interrupted enqueue knows: every login is in exactly one of
/// `confirmed`, `unconfirmed` and `not_sent`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartialEnqueue {
    /// Logins whose round trip Redis answered: each is in the batch, or
    /// was already active elsewhere.
    pub confirmed: u64,
    /// Of `confirmed`, new jobs.
    pub enqueued: u64,
    /// Of `confirmed`, logins with an unfinished job in another batch.
    pub already_active: u64,
    /// Of `confirmed`, logins already in this batch.
    pub already_in_batch: u64,
    /// Logins of the round trip Redis never answered: some may be in.
    pub unconfirmed: u64,
    /// Logins never sent: none of them is in.
    pub not_sent: u64,
    /// Unique valid logins of the input.
    pub total: u64,
}

/// `--json` output of an interrupted enqueue.
#[derive(Serialize)]
struct Interrupted<'a> {
    batch: &'a str,
    interrupted: &'a PartialEnqueue,
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
    let mut confirmed = 0;
    while let Some(logins) = input.next_chunk(ENQUEUE_CHUNK * CHUNKS_PER_ROUND_TRIP)? {
        // a round trip whose answer is lost may or may not have been applied:
        // resending it is safe (a login already in the batch is reported as
        // such, never enqueued twice) and is the only way to learn
        let answer = redis_retry::patiently("enqueue", args.retry_for, async || {
            store
                .enqueue_with(&batch, args.priority, args.product, &logins)
                .await
        })
        .await;
        match answer {
            Ok(answer) => report += answer,
            Err(source) => {
                let unconfirmed = logins.len() as u64;
                let partial = PartialEnqueue {
                    confirmed,
                    enqueued: report.enqueued,
                    already_active: report.already_active,
                    already_in_batch: report.already_in_batch,
                    unconfirmed,
                    not_sent: input.unique.saturating_sub(confirmed + unconfirmed),
                    total: input.unique,
                };
                if let Some(bar) = bar {
                    bar.abandon();
                }
                if args.json {
                    serde_json::to_writer(
                        &mut *out,
                        &Interrupted {
                            batch: &batch,
                            interrupted: &partial,
                        },
                    )
                    .map_err(std::io::Error::from)?;
                    writeln!(out)?;
                }
                return Err(CliError::EnqueueInterrupted {
                    batch,
                    partial: Box::new(partial),
                    source,
                });
            }
        }
        confirmed += logins.len() as u64;
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
        product: args.product,
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
            "enqueued {}, already active {}, already in batch {}, duplicates {}, invalid {} (batch {}, product {})",
            summary.enqueued,
            summary.already_active,
            summary.already_in_batch,
            summary.duplicates,
            summary.invalid,
            summary.batch,
            summary.product
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
