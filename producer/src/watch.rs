//! `flinkq status --batch B --watch`: follow a batch until it is finished.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use flinkq_shared::store::{StateCounts, Store};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::CliError;
use crate::redis_retry;

/// How long `--watch` keeps retrying while Redis does not answer before it
/// gives up (exit 69): long enough for a restart or a failover, short
/// enough that a script watching a batch learns Redis is really gone.
const REDIS_PATIENCE: Duration = Duration::from_secs(60);

/// Follows `batch` until every job is finished; Ok if all succeeded.
pub async fn run(
    store: &Store,
    batch: &str,
    interval: Duration,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    loop {
        let counts = redis_retry::patiently("status --watch", REDIS_PATIENCE, async || {
            store.counts(Some(batch)).await
        })
        .await?;
        let finished = counts.total.saturating_sub(counts.unfinished());
        match &bar {
            Some(bar) => {
                bar.set_length(counts.total);
                bar.set_position(finished);
                bar.set_message(summary(&counts));
            }
            None => writeln!(
                out,
                "{batch}: {finished}/{} finished — {}",
                counts.total,
                summary(&counts)
            )?,
        }
        if counts.total > 0 && counts.unfinished() == 0 {
            if let Some(bar) = &bar {
                bar.finish();
            }
            writeln!(out, "batch {batch} finished: {}", summary(&counts))?;
            return if counts.failed + counts.timed_out + counts.cancelled == 0 {
                Ok(())
            } else {
                Err(CliError::BatchNotAllSucceeded {
                    batch: batch.to_owned(),
                    failed: counts.failed,
                    timed_out: counts.timed_out,
                    cancelled: counts.cancelled,
                })
            };
        }
        tokio::time::sleep(interval).await;
    }
}

fn summary(c: &StateCounts) -> String {
    format!(
        "queued {} authorizing {} polling {} succeeded {} failed {} timed_out {} cancelled {}",
        c.queued, c.authorizing, c.polling, c.succeeded, c.failed, c.timed_out, c.cancelled
    )
}
