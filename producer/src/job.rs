//! `flinkq job <loginId> [--product P]`: one login's newest job of a product.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use flinkq_shared::store::Store;
use flinkq_shared::{JobId, JobSnapshot, JobState, LoginId, Product, StepError};
use serde::Serialize;

use crate::cli::JobArgs;
use crate::error::CliError;

/// Runs `flinkq job`.
pub async fn run(store: &Store, args: &JobArgs, out: &mut impl Write) -> Result<(), CliError> {
    let login = LoginId::parse(&args.login_id).map_err(CliError::BadLoginId)?;
    let job = store
        .job_for_login(&login, args.product)
        .await?
        .ok_or_else(|| CliError::NoJob {
            login: login.to_string(),
            product: args.product,
        })?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &JobView::from(&job))
            .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        write_human(&job, out)?;
    }
    Ok(())
}

/// `flinkq job --json`: the job's identity, progress and last error, as
/// fields listed here one by one, so a field added to the job hash is never
/// printed by accident: no claim token (whoever holds it could commit as
/// the worker) and no payload.
#[derive(Debug, Serialize)]
pub struct JobView<'a> {
    /// The job's id.
    pub id: JobId,
    /// Its login.
    pub login: &'a LoginId,
    /// Its product.
    pub product: Product,
    /// Its state.
    pub state: JobState,
    /// Its batch.
    pub batch: &'a str,
    /// The product's data stage it is at.
    pub stage: u8,
    /// Data calls made.
    pub polls: u32,
    /// Consecutive transient failures of the current step.
    pub attempts: u32,
    /// Transient failures retried, in all.
    pub retries: u32,
    /// Successful Authorize calls.
    pub auths: u32,
    /// Its last error: `{code, http_status, message}`, or null.
    pub error: Option<&'a StepError>,
    /// A short label of the last step's outcome.
    pub last: Option<&'a str>,
    /// Enqueue time (ms).
    pub created_ms: u64,
    /// First claim (ms).
    pub started_ms: Option<u64>,
    /// Last change (ms).
    pub updated_ms: u64,
    /// Terminal time (ms).
    pub finished_ms: Option<u64>,
    /// Its polling deadline (ms).
    pub deadline_ms: Option<u64>,
}

impl<'a> From<&'a JobSnapshot> for JobView<'a> {
    fn from(job: &'a JobSnapshot) -> Self {
        JobView {
            id: job.id,
            login: &job.login,
            product: job.product,
            state: job.state,
            batch: &job.batch,
            stage: job.stage,
            polls: job.polls,
            attempts: job.attempts,
            retries: job.retries,
            auths: job.auths,
            error: job.error.as_ref(),
            last: job.last.as_deref(),
            created_ms: job.created_ms,
            started_ms: job.started_ms,
            updated_ms: job.updated_ms,
            finished_ms: job.finished_ms,
            deadline_ms: job.deadline_ms,
        }
    }
}

/// The human-readable view.
pub fn write_human(job: &JobSnapshot, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "login     {}", job.login)?;
    writeln!(out, "product   {} (stage {})", job.product, job.stage)?;
    writeln!(out, "job       {} (batch {})", job.id, job.batch)?;
    writeln!(out, "state     {}", job.state)?;
    writeln!(out, "created   {}", time(Some(job.created_ms)))?;
    writeln!(out, "started   {}", time(job.started_ms))?;
    writeln!(out, "updated   {}", time(Some(job.updated_ms)))?;
    writeln!(out, "finished  {}", time(job.finished_ms))?;
    writeln!(out, "deadline  {}", time(job.deadline_ms))?;
    writeln!(
        out,
        "steps     {} authorize, {} polls, {} retries (current attempt {}), last {}",
        job.auths,
        job.polls,
        job.retries,
        job.attempts,
        job.last.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "limits    {} sessions this run, {} claims since the last commit",
        job.sessions, job.claims
    )?;
    match &job.error {
        Some(error) => writeln!(out, "error     {error}"),
        None => writeln!(out, "error     -"),
    }
}

/// RFC 3339 UTC with milliseconds, or `-`.
pub fn time(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        }
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_rfc3339() {
        assert_eq!(time(Some(1_795_527_901_250)), "2026-11-24T13:45:01.250Z");
        assert_eq!(time(None), "-");
    }
}
