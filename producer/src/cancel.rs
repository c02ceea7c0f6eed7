//! `flinkq cancel <loginId>`: cancel a login's unfinished job.

use std::io::Write;

use flinkq_shared::LoginId;
use flinkq_shared::store::Store;

use crate::cli::CancelArgs;
use crate::error::CliError;

/// Runs `flinkq cancel`. A worker holding the job stops at its next step.
pub async fn run(store: &Store, args: &CancelArgs, out: &mut impl Write) -> Result<(), CliError> {
    let login = LoginId::parse(&args.login_id).map_err(CliError::BadLoginId)?;
    match store.cancel(&login, args.product).await? {
        Some(id) => {
            writeln!(out, "cancelled job {id} of {login} ({})", args.product)?;
            Ok(())
        }
        None => Err(CliError::NothingToCancel(login.to_string(), args.product)),
    }
}
