//! `flinkq status`: job counts per state.

use std::io::Write;

use flinkq_shared::JobState;
use flinkq_shared::store::Store;

use crate::cli::StatusArgs;
use crate::error::CliError;

/// Runs `flinkq status`.
pub async fn run(store: &Store, args: &StatusArgs, out: &mut impl Write) -> Result<(), CliError> {
    if let Some(batch) = &args.batch
        && !store.batch_exists(batch).await?
    {
        return Err(CliError::UnknownBatch(batch.clone()));
    }
    if args.watch
        && let Some(batch) = &args.batch
    {
        return crate::watch::run(store, batch, args.interval, out).await;
    }
    let counts = store.counts(args.batch.as_deref()).await?;
    if args.json {
        serde_json::to_writer(&mut *out, &counts).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if let Some(batch) = &args.batch {
        writeln!(out, "batch {batch}")?;
    }
    for state in JobState::ALL {
        writeln!(out, "{:<12} {:>10}", state.as_str(), counts.get(state))?;
    }
    writeln!(out, "{:<12} {:>10}", "total", counts.total)?;
    Ok(())
}
