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
//! - [`job`]: `flinkq job`.
//! - [`dead`]: `flinkq dead list|retry|purge`.
//! - [`cancel`]: `flinkq cancel`.
//! - [`batch_name`]: generated batch names.
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
            let input = enqueue::prepare(args)?;
            enqueue::run(&connect().await?, args, input, out).await
        }
        Command::Status(args) => status::run(&connect().await?, args, out).await,
        Command::Job(args) => job::run(&connect().await?, args, out).await,
        Command::Batches(args) => batches::run(&connect().await?, args, out).await,
        Command::Dead(args) => dead::run(&connect().await?, args, out).await,
        Command::Cancel(args) => cancel::run(&connect().await?, args, out).await,
    }
}
