//! `flinkq batches`: recent batches with their counts.

use std::io::Write;

use flinkq_shared::store::Store;

use crate::cli::BatchesArgs;
use crate::error::CliError;
use crate::job::time;

/// Runs `flinkq batches`.
pub async fn run(store: &Store, args: &BatchesArgs, out: &mut impl Write) -> Result<(), CliError> {
    let batches = store.batches(args.limit).await?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &batches).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:<24} {:>7} {:>9} {:>7} {:>9} {:>10}  completed",
        "batch", "created", "total", "succeeded", "failed", "timed_out", "unfinished"
    )?;
    for b in &batches {
        writeln!(
            out,
            "{:<32} {:<24} {:>7} {:>9} {:>7} {:>9} {:>10}  {}",
            b.name,
            time(Some(b.created_ms)),
            b.counts.total,
            b.counts.succeeded,
            b.counts.failed,
            b.counts.timed_out,
            b.counts.unfinished(),
            time(b.completed_ms)
        )?;
    }
    Ok(())
}
