//! `flinkq dead`: inspect, retry and purge failed and timed-out jobs.

use std::io::Write;

use flinkq_shared::store::{DeadPage, DeadWalk, PurgeSet, Store, StoreError};
use flinkq_shared::{JobState, LoginId, Product};

use crate::cli::{DeadAction, DeadArgs};
use crate::error::CliError;
use crate::job::time;

/// Ids handled per Redis call.
const PAGE: usize = 1_000;

/// Runs `flinkq dead …`.
pub async fn run(store: &Store, args: &DeadArgs, out: &mut impl Write) -> Result<(), CliError> {
    match &args.action {
        DeadAction::List {
            json,
            limit,
            product,
        } => list(store, *json, *limit, *product, out).await,
        DeadAction::Retry {
            login_id,
            all,
            product,
        } => match (login_id, all) {
            (Some(login), false) => retry_one(store, login, product.unwrap_or_default(), out).await,
            (None, true) => retry_all(store, *product, out).await,
            _ => Err(CliError::Usage("give one loginId or --all, not both")),
        },
        DeadAction::Purge {
            older_than,
            product,
        } => {
            let purged = purge(store, *older_than, *product).await?;
            writeln!(
                out,
                "purged {purged} dead {}jobs finished more than {} ago",
                product.map_or_else(String::new, |p| format!("{p} ")),
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
    product: Option<Product>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let jobs = match product {
        None => store.jobs(&store.dead_ids(0, limit).await?).await?,
        Some(product) => {
            // the oldest `limit` dead letters of the product, page by page
            let mut jobs = Vec::new();
            let mut offset = 0;
            while jobs.len() < limit {
                let ids = store.dead_ids(offset, PAGE).await?;
                offset += ids.len();
                jobs.extend(
                    store
                        .jobs(&ids)
                        .await?
                        .into_iter()
                        .filter(|job| job.product == product),
                );
                if ids.len() < PAGE {
                    break;
                }
            }
            jobs.truncate(limit);
            jobs
        }
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &jobs).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let total = store.dead_count().await?;
    writeln!(
        out,
        "{total} dead jobs (failed or timed out){}",
        match product {
            Some(product) => format!(", oldest {} of {product} shown", jobs.len()),
            None if total > jobs.len() as u64 => format!(", oldest {} shown", jobs.len()),
            None => String::new(),
        }
    )?;
    for job in &jobs {
        let reason = job
            .error
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        writeln!(
            out,
            "{}  {:<16}  {:<9}  {}  batch {}  {reason}",
            job.login,
            job.product.as_str(),
            job.state.as_str(),
            time(job.finished_ms),
            job.batch
        )?;
    }
    Ok(())
}

async fn retry_one(
    store: &Store,
    login: &str,
    product: Product,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let login = LoginId::parse(login).map_err(CliError::BadLoginId)?;
    let job = store
        .job_for_login(&login, product)
        .await?
        .ok_or_else(|| CliError::NoJob {
            login: login.to_string(),
            product,
        })?;
    if !matches!(job.state, JobState::Failed | JobState::TimedOut) {
        return Err(CliError::NotDead {
            login: login.to_string(),
            product,
            state: job.state,
        });
    }
    let (requeued, _) = store.retry_dead(&[job.id]).await?;
    writeln!(
        out,
        "requeued {requeued} (job {} of {login}, {product})",
        job.id
    )?;
    Ok(())
}

/// Requeues every dead letter present when it starts, each exactly once,
/// page by page, and ends: the walk is bounded by Redis' clock at its first
/// page, so jobs that fail again while it runs (workers are running) are
/// not met again, however slow the link to Redis. `product` limits it to
/// the dead letters of one product (`None`: every product).
async fn retry_all(
    store: &Store,
    product: Option<Product>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let total = retry_all_pages(store, product).await?;
    writeln!(
        out,
        "requeued {}, skipped {} (their login already has an unfinished job of that product){}",
        total.requeued,
        total.skipped,
        product.map_or_else(String::new, |p| format!("; only {p} jobs"))
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

/// Walks every dead letter present when it starts (see `retry_all`) and
/// requeues them; what the pages did, summed.
pub async fn retry_all_pages(
    store: &Store,
    product: Option<Product>,
) -> Result<DeadPage, StoreError> {
    let mut walk = DeadWalk::start();
    let mut total = DeadPage::default();
    while !walk.done {
        let page = store.retry_dead_page(&mut walk, PAGE, product).await?;
        total.requeued += page.requeued;
        total.skipped += page.skipped;
        total.orphans += page.orphans;
    }
    Ok(total)
}

/// Deletes the dead letters (of `product`, or every product) that finished
/// more than `older_than` ago, page by page; how many were deleted.
pub async fn purge(
    store: &Store,
    older_than: std::time::Duration,
    product: Option<Product>,
) -> Result<u64, StoreError> {
    let (mut purged, mut kept) = (0, 0);
    loop {
        let (removed, other) = store
            .purge_page(PurgeSet::Dead, older_than, PAGE, product, kept)
            .await?;
        purged += removed;
        kept += other;
        if removed + other < PAGE as u64 {
            return Ok(purged);
        }
    }
}
