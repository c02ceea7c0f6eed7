//! `flinkq refresh`: enqueue every registered login once (per product).

use std::io::Write;

use flinkq_shared::store::{EnqueueReport, Store, StoreError};
use flinkq_shared::{Priority, Product};

use crate::cli::RefreshArgs;
use crate::error::CliError;

/// Runs `flinkq refresh`: enqueues every registered login (see
/// [`enqueue_registered`]) and prints the counts.
pub async fn run(store: &Store, args: &RefreshArgs, out: &mut impl Write) -> Result<(), CliError> {
    let batch = args
        .batch
        .clone()
        .unwrap_or_else(crate::batch_name::generate);
    let total = enqueue_registered(store, &batch, args.priority, &[args.product]).await?;
    if args.json {
        let summary = serde_json::json!({
            "batch": batch,
            "product": args.product,
            "enqueued": total.enqueued,
            "already_active": total.already_active,
            "already_in_batch": total.already_in_batch,
        });
        writeln!(out, "{summary}")?;
    } else {
        writeln!(
            out,
            "enqueued {}, already active {}, already in batch {} (batch {batch}, product {})",
            total.enqueued, total.already_active, total.already_in_batch, args.product
        )?;
    }
    Ok(())
}

/// Walks the registry page by page (never holding it whole) and enqueues
/// each page into `batch` once per product of `products` (a product listed
/// twice counts once); a (login, product) with an unfinished job is skipped,
/// and one already in `batch` too, so a re-run is idempotent. Returns the
/// summed counts. `flinkq refresh` and `flinkq schedule` share it.
pub async fn enqueue_registered(
    store: &Store,
    batch: &str,
    priority: Priority,
    products: &[Product],
) -> Result<EnqueueReport, StoreError> {
    let mut unique: Vec<Product> = Vec::with_capacity(products.len());
    for product in products {
        if !unique.contains(product) {
            unique.push(*product);
        }
    }
    let mut total = EnqueueReport::default();
    let mut cursor = 0;
    loop {
        let (next, page) = store.registered_page(cursor).await?;
        for product in &unique {
            total += store.enqueue_with(batch, priority, *product, &page).await?;
        }
        if next == 0 {
            return Ok(total);
        }
        cursor = next;
    }
}
