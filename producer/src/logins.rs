//! `flinkq logins`: the registry of logins refreshed by `flinkq refresh`.

use std::io::Write;

use flinkq_shared::store::{ENQUEUE_CHUNK, Store};

use crate::cli::{LoginsAction, LoginsArgs};
use crate::error::CliError;
use crate::input::LoginInput;

/// Runs `flinkq logins …`; `input` holds the validated loginIds of add,
/// remove and import.
pub async fn run(
    store: &Store,
    args: &LoginsArgs,
    input: Option<LoginInput>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    match (&args.action, input) {
        (LoginsAction::Add { .. } | LoginsAction::Import { .. }, Some(mut input)) => {
            let mut added = 0;
            while let Some(logins) = input.next_chunk(ENQUEUE_CHUNK)? {
                added += store.register(&logins).await?;
            }
            let total = store.registered_count().await?;
            writeln!(
                out,
                "registered {added} new, {} already registered ({total} in all)",
                input.unique - added
            )?;
        }
        (LoginsAction::Remove { .. }, Some(mut input)) => {
            let logins = input.read_all()?;
            let removed = store.unregister(&logins).await?;
            writeln!(
                out,
                "unregistered {removed}, {} were not registered",
                input.unique - removed
            )?;
        }
        (
            LoginsAction::Add { .. } | LoginsAction::Import { .. } | LoginsAction::Remove { .. },
            None,
        ) => {
            return Err(CliError::NoInput);
        }
        (LoginsAction::List { json }, _) => {
            let mut all = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, page) = store.registered_page(cursor).await?;
                all.extend(page);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            all.sort();
            all.dedup();
            if *json {
                serde_json::to_writer(&mut *out, &all).map_err(std::io::Error::from)?;
                writeln!(out)?;
            } else {
                for login in all {
                    writeln!(out, "{login}")?;
                }
            }
        }
    }
    Ok(())
}
