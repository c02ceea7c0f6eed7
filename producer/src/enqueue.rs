//! `flinkq enqueue`: validate everything, then enqueue in pipelined chunks.

use std::io::Write;

use flinkq_shared::store::Store;
use serde::Serialize;

use crate::cli::EnqueueArgs;
use crate::error::CliError;
use crate::input::LoginInput;

/// What `flinkq enqueue` reports.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// The batch.
    pub batch: String,
    /// New jobs.
    pub enqueued: u64,
    /// Logins that already had an unfinished job.
    pub already_active: u64,
    /// Repeated loginIds in the input.
    pub duplicates: u64,
    /// Rejected lines.
    pub invalid: u64,
}

/// Runs `flinkq enqueue` on a prepared input.
pub async fn run(
    store: &Store,
    args: &EnqueueArgs,
    input: LoginInput,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let batch = args
        .batch
        .clone()
        .unwrap_or_else(crate::batch_name::generate);
    let report = store
        .enqueue_with(&batch, args.priority, &input.logins)
        .await?;
    let summary = EnqueueSummary {
        batch,
        enqueued: report.enqueued,
        already_active: report.already_active,
        duplicates: input.duplicates,
        invalid: input.invalid.len() as u64,
    };
    if args.json {
        serde_json::to_writer(&mut *out, &summary).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "enqueued {}, already active {}, duplicates {}, invalid {} (batch {})",
            summary.enqueued,
            summary.already_active,
            summary.duplicates,
            summary.invalid,
            summary.batch
        )?;
    }
    Ok(())
}
