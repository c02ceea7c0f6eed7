//! `flinkq job <loginId>`: one login's newest job.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use flinkq_shared::store::Store;
use flinkq_shared::{JobSnapshot, LoginId};

use crate::cli::JobArgs;
use crate::error::CliError;

/// Runs `flinkq job`.
pub async fn run(store: &Store, args: &JobArgs, out: &mut impl Write) -> Result<(), CliError> {
    let login = LoginId::parse(&args.login_id).map_err(CliError::BadLoginId)?;
    let job = store
        .job_for_login(&login)
        .await?
        .ok_or_else(|| CliError::NoJob(login.to_string()))?;
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &job).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        write_human(&job, out)?;
    }
    Ok(())
}

/// The human-readable view.
pub fn write_human(job: &JobSnapshot, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "login     {}", job.login)?;
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
