//! `flinkq result <loginId> [--product P]`: the login's newest stored
//! payload of a product, from whichever sink the worker used (a file it
//! wrote, or Redis).

use std::io::Write;

use flinkq_shared::result_record::decompress;
use flinkq_shared::store::Store;
use flinkq_shared::{JobSnapshot, LoginId, Product, ResultPlace, StoredResult};

use crate::cli::ResultArgs;
use crate::error::CliError;

/// Runs `flinkq result`.
pub async fn run(store: &Store, args: &ResultArgs, out: &mut impl Write) -> Result<(), CliError> {
    let login = LoginId::parse(&args.login_id).map_err(CliError::BadLoginId)?;
    let product = args.product;
    let (stored, newest) = find(store, &login, product).await?;
    if let Some(job) = newest.filter(|job| job.id != stored.job) {
        eprintln!(
            "flinkq: note: this payload is from job {}; the newest {product} job of {login} is {} ({})",
            stored.job, job.id, job.state
        );
    }
    if args.meta {
        let meta = meta(&login, product, &stored, store);
        serde_json::to_writer_pretty(&mut *out, &meta).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    let payload = read_payload(store, &login, product, &stored)?;
    out.write_all(&payload)?;
    if !payload.ends_with(b"\n") {
        writeln!(out)?;
    }
    Ok(())
}

/// The login's newest stored result of `product` and its newest job of
/// that product; when there is no stored result, why not (no job, the job
/// is unfinished or failed, the result expired).
pub async fn find(
    store: &Store,
    login: &LoginId,
    product: Product,
) -> Result<(StoredResult, Option<JobSnapshot>), CliError> {
    let stored = store.stored_result(login, product).await?;
    let newest = store.job_for_login(login, product).await?;
    let Some(stored) = stored else {
        return Err(match newest {
            None => CliError::NoJob {
                login: login.to_string(),
                product,
            },
            Some(job) => CliError::NoResult {
                login: login.to_string(),
                product,
                why: match (job.state, &job.error) {
                    (flinkq_shared::JobState::Succeeded, _) => {
                        "its newest job succeeded, but the stored result has expired (FLINKQ_RESULT_TTL)".into()
                    }
                    (state, Some(error)) if state.is_terminal() => {
                        format!("its newest job is {state} ({error})")
                    }
                    (state, _) => format!("its newest job is {state}"),
                },
            },
        });
    };
    Ok((stored, newest))
}

/// The payload bytes of a stored result, from whichever sink holds them.
pub fn read_payload(
    store: &Store,
    login: &LoginId,
    product: Product,
    stored: &StoredResult,
) -> Result<Vec<u8>, CliError> {
    match &stored.place {
        ResultPlace::Redis(gzip) => decompress(gzip).map_err(|source| CliError::CorruptResult {
            key: store.keys().result(login, product),
            source,
        }),
        ResultPlace::File(path) => std::fs::read(path).map_err(|source| CliError::ResultFile {
            path: path.clone(),
            source,
        }),
    }
}

/// `--meta`: where the payload is, without it.
fn meta(
    login: &LoginId,
    product: Product,
    stored: &StoredResult,
    store: &Store,
) -> serde_json::Value {
    let (sink, location, bytes) = match &stored.place {
        ResultPlace::Redis(gzip) => ("redis", store.keys().result(login, product), gzip.len()),
        ResultPlace::File(path) => ("file", path.clone(), 0),
    };
    let mut meta = serde_json::json!({
        "login": login.to_string(),
        "product": product,
        "job": stored.job.to_string(),
        "stored_ms": stored.stored_ms,
        "sink": sink,
        "location": location,
    });
    if sink == "redis" {
        meta["compressed_bytes"] = bytes.into();
    }
    meta
}
