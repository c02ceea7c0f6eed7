//! `flinkq enqueue`: validate everything, then enqueue in pipelined chunks.

use std::io::Write;

use flinkq_shared::store::Store;
use serde::Serialize;

use crate::cli::EnqueueArgs;
use crate::error::CliError;
use crate::input::LoginInput;

/// Most invalid lines printed; the rest are counted.
const MAX_PRINTED_INVALID: usize = 20;

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

/// Reads and validates the input (nothing is written before it is all read).
pub fn read_input(args: &EnqueueArgs) -> Result<LoginInput, CliError> {
    let mut input = LoginInput::default();
    input.add_arguments(&args.login_ids);
    if let Some(path) = &args.file {
        let read_error = |source| CliError::Read {
            path: path.display().to_string(),
            source,
        };
        if path.as_os_str() == "-" {
            input
                .add_lines("stdin", std::io::stdin().lock())
                .map_err(read_error)?;
        } else {
            let file = std::fs::File::open(path).map_err(read_error)?;
            let name = path.display().to_string();
            input
                .add_lines(&name, std::io::BufReader::new(file))
                .map_err(read_error)?;
        }
    }
    Ok(input)
}

/// Reads and validates the whole input before anything touches Redis:
/// invalid lines are listed on stderr, and unless `--skip-invalid` they stop
/// the command with nothing enqueued.
pub fn prepare(args: &EnqueueArgs) -> Result<LoginInput, CliError> {
    if args.login_ids.is_empty() && args.file.is_none() {
        return Err(CliError::NoInput);
    }
    let input = read_input(args)?;
    report_invalid(&input);
    if !input.invalid.is_empty() && !args.skip_invalid {
        return Err(CliError::InvalidInput {
            invalid: input.invalid.len(),
        });
    }
    Ok(input)
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
    let report = store.enqueue(&batch, &input.logins).await?;
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

fn report_invalid(input: &LoginInput) {
    for line in input.invalid.iter().take(MAX_PRINTED_INVALID) {
        eprintln!("{}: {}", line.location, line.reason);
    }
    if input.invalid.len() > MAX_PRINTED_INVALID {
        eprintln!(
            "... and {} more invalid lines",
            input.invalid.len() - MAX_PRINTED_INVALID
        );
    }
}
