//! `flinkq logins`: the registry of logins refreshed by `flinkq refresh`.

use std::io::Write;

use flinkq_shared::store::Store;

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
    let logins = input.map(|i| i.logins).unwrap_or_default();
    match &args.action {
        LoginsAction::Add { .. } | LoginsAction::Import { .. } => {
            let added = store.register(&logins).await?;
            let total = store.registered_count().await?;
            writeln!(
                out,
                "registered {added} new, {} already registered ({total} in all)",
                logins.len() as u64 - added
            )?;
        }
        LoginsAction::Remove { .. } => {
            let removed = store.unregister(&logins).await?;
            writeln!(
                out,
                "unregistered {removed}, {} were not registered",
                logins.len() as u64 - removed
            )?;
        }
        LoginsAction::List { json } => {
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
