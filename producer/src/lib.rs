//! `flinkq`, the operator CLI: enqueue loginIds, watch batches, inspect jobs.
//!
//! # Layout
//!
//! - [`cli`]: the clap structs (every flag also a `FLINKQ_…` env var).
//! - [`input`]: reading and validating loginIds (line numbers, BOM, CRLF, dedupe).
//! - [`enqueue`]: `flinkq enqueue`.
//! - [`status`]: `flinkq status`.
//! - [`watch`]: `flinkq status --batch B --watch`, with its exit codes.
//! - [`batches`]: `flinkq batches`.
//! - [`logins`]: `flinkq logins add|remove|list|import`.
//! - [`refresh`]: `flinkq refresh`.
//! - [`job`]: `flinkq job`.
//! - [`result`]: `flinkq result`, from either sink.
//! - [`dead`]: `flinkq dead list|retry|purge`.
//! - [`cancel`]: `flinkq cancel`.
//! - [`schedule`]: `flinkq schedule`, the cron scheduler (cron and time zone,
//!   the pure tick decision, the loop, signals).
//! - [`serve`]: `flinkq serve`, the HTTP API (one file per resource under `serve/api/`).
//! - [`batch_name`]: generated batch names.
//! - [`redis_retry`]: short capped retries that ride out a Redis restart.
//! - [`error`]: the `CliError` enum and exit codes.

pub mod batch_name;
pub mod batches;
pub mod cancel;
pub mod cli;
pub mod dead;
pub mod enqueue;
pub mod error;
pub mod input;
pub mod job;
pub mod logins;
pub mod redis_retry;
pub mod refresh;
pub mod result;
pub mod schedule;
pub mod serve;
pub mod status;
pub mod watch;

use flinkq_shared::store::Store;

use cli::{Cli, Command};
use error::CliError;

/// Runs one `flinkq` command, writing its output to `out`.
pub async fn run(cli: &Cli, out: &mut impl std::io::Write) -> Result<(), CliError> {
    let config = cli.redis.store_config();
    let connect = || Store::connect(&config);
    match &cli.command {
        Command::Enqueue(args) => {
            // the whole input is validated before Redis is touched
            let input = input::collect(&args.login_ids, args.file.as_deref(), args.skip_invalid)?;
            enqueue::run(&connect().await?, args, input, out).await
        }
        Command::Status(args) => status::run(&connect().await?, args, out).await,
        Command::Job(args) => job::run(&connect().await?, args, out).await,
        Command::Result(args) => result::run(&connect().await?, args, out).await,
        Command::Batches(args) => batches::run(&connect().await?, args, out).await,
        Command::Logins(args) => {
            // files are validated before Redis is touched
            let input = match &args.action {
                cli::LoginsAction::Import { file, skip_invalid } => {
                    Some(input::collect(&[], Some(file), *skip_invalid)?)
                }
                cli::LoginsAction::Add { login_ids } | cli::LoginsAction::Remove { login_ids } => {
                    Some(input::collect(login_ids, None, false)?)
                }
                cli::LoginsAction::List { .. } => None,
            };
            logins::run(&connect().await?, args, input, out).await
        }
        Command::Refresh(args) => refresh::run(&connect().await?, args, out).await,
        Command::Dead(args) => dead::run(&connect().await?, args, out).await,
        Command::Cancel(args) => cancel::run(&connect().await?, args, out).await,
        Command::Schedule(args) => {
            // the expression and the zone are checked before Redis is touched
            let plan = schedule::Schedule::parse(&args.cron, &args.tz)?;
            let store = connect().await?;
            let signal = flinkq_shared::shutdown::on_signal()?;
            let shutdown = async move {
                let signal = signal.await;
                tracing::info!("{signal}: stopping the scheduler");
            };
            schedule::run(&store, &plan, args, out, shutdown).await
        }
        Command::Serve(args) => serve::run(&cli.redis, args).await,
    }
}
