//! `flinkq dead`: inspect, retry and purge failed and timed-out jobs.

use std::io::Write;

use flinkq_shared::store::{DeadPage, DeadWalk, PurgeSet, Store};
use flinkq_shared::{JobState, LoginId};

use crate::cli::{DeadAction, DeadArgs};
use crate::error::CliError;
use crate::job::time;

/// Ids handled per Redis call.
const PAGE: usize = 1_000;

/// Runs `flinkq dead …`.
pub async fn run(store: &Store, args: &DeadArgs, out: &mut impl Write) -> Result<(), CliError> {
    match &args.action {
        DeadAction::List { json, limit } => list(store, *json, *limit, out).await,
        DeadAction::Retry { login_id, all } => match (login_id, all) {
            (Some(login), false) => retry_one(store, login, out).await,
            (None, true) => retry_all(store, out).await,
            _ => Err(CliError::Usage("give one loginId or --all, not both")),
        },
        DeadAction::Purge { older_than } => {
            let mut purged = 0;
            loop {
                let removed = store.purge(PurgeSet::Dead, *older_than, PAGE).await?;
                purged += removed;
                if removed < PAGE as u64 {
                    break;
                }
            }
            writeln!(
                out,
                "purged {purged} dead jobs finished more than {} ago",
                humantime::format_duration(*older_than)
            )?;
            Ok(())
        }
    }
}

async fn list(
    store: &Store,
    json: bool,
    limit: usize,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let ids = store.dead_ids(0, limit).await?;
    let jobs = store.jobs(&ids).await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &jobs).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let total = store.dead_count().await?;
    writeln!(
        out,
        "{total} dead jobs (failed or timed out){}",
        if total > jobs.len() as u64 {
            format!(", oldest {} shown", jobs.len())
        } else {
            String::new()
        }
    )?;
    for job in &jobs {
        let reason = job
            .error
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        writeln!(
            out,
            "{}  {:<9}  {}  batch {}  {reason}",
            job.login,
            job.state.as_str(),
            time(job.finished_ms),
            job.batch
        )?;
    }
    Ok(())
}

async fn retry_one(store: &Store, login: &str, out: &mut impl Write) -> Result<(), CliError> {
    let login = LoginId::parse(login).map_err(CliError::BadLoginId)?;
    let job = store
        .job_for_login(&login)
        .await?
        .ok_or_else(|| CliError::NoJob(login.to_string()))?;
    if !matches!(job.state, JobState::Failed | JobState::TimedOut) {
        return Err(CliError::NotDead {
            login: login.to_string(),
            state: job.state,
        });
    }
    let (requeued, _) = store.retry_dead(&[job.id]).await?;
    writeln!(out, "requeued {requeued} (job {} of {login})", job.id)?;
    Ok(())
}

/// Requeues every dead letter present when it starts, each exactly once,
/// page by page, and ends: the walk is bounded by Redis' clock at its first
/// page, so jobs that fail again while it runs (workers are running) are
/// not met again, however slow the link to Redis.
async fn retry_all(store: &Store, out: &mut impl Write) -> Result<(), CliError> {
    let mut walk = DeadWalk::start();
    let mut total = DeadPage::default();
    while !walk.done {
        let page = store.retry_dead_page(&mut walk, PAGE).await?;
        total.requeued += page.requeued;
        total.skipped += page.skipped;
        total.orphans += page.orphans;
    }
    writeln!(
        out,
        "requeued {}, skipped {} (their login already has an unfinished job)",
        total.requeued, total.skipped
    )?;
    if total.orphans > 0 {
        writeln!(
            out,
            "dropped {} dead-letter ids whose job is gone (evicted or deleted)",
            total.orphans
        )?;
    }
    Ok(())
}
