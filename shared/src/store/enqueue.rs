//! Enqueueing: one job per (login, product) not already active, in
//! pipelined chunks.

use super::{Store, StoreError};
use crate::{JobId, LoginId, Priority, Product};

/// Logins per enqueue script call: large enough to amortise round trips,
/// small enough not to block Redis for long.
pub const ENQUEUE_CHUNK: usize = 1_000;

/// What an enqueue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnqueueReport {
    /// New jobs created.
    pub enqueued: u64,
    /// Logins skipped because they already have an unfinished job of the
    /// product.
    pub already_active: u64,
    /// Logins skipped because their newest job of the product already
    /// belongs to this batch (an enqueue run twice).
    pub already_in_batch: u64,
}

impl std::ops::AddAssign for EnqueueReport {
    fn add_assign(&mut self, other: EnqueueReport) {
        self.enqueued += other.enqueued;
        self.already_active += other.already_active;
        self.already_in_batch += other.already_in_batch;
    }
}

impl Store {
    /// Enqueues one normal-priority job of the default product
    /// ([`Product::DEFAULT`]) per login not already active.
    pub async fn enqueue(
        &self,
        batch: &str,
        logins: &[LoginId],
    ) -> Result<EnqueueReport, StoreError> {
        self.enqueue_with(batch, Priority::Normal, Product::DEFAULT, logins)
            .await
    }

    /// Enqueues one job of `product` per login without an unfinished job of
    /// that product, at `priority`, in chunks of [`ENQUEUE_CHUNK`] pipelined
    /// together.
    pub async fn enqueue_with(
        &self,
        batch: &str,
        priority: Priority,
        product: Product,
        logins: &[LoginId],
    ) -> Result<EnqueueReport, StoreError> {
        let mut pipe = redis::pipe();
        for chunk in logins.chunks(ENQUEUE_CHUNK) {
            let mut call = self.invoke(&self.scripts.enqueue);
            call.arg(batch).arg(priority.as_str()).arg(product.as_str());
            for login in chunk {
                call.arg(login.to_string()).arg(JobId::new().to_string());
            }
            pipe.invoke_script(&call);
        }
        if logins.is_empty() {
            return Ok(EnqueueReport::default());
        }
        self.load_scripts(&[&self.scripts.enqueue]).await?;
        // with FLINKQ_REDIS_WAIT_REPLICAS, an enqueue the replicas did not
        // confirm is an unanswered error: run it again (it is idempotent:
        // a second run reports the jobs already active or in the batch)
        let (replies, acked) = self
            .write_durably("enqueue", pipe, &[&self.scripts.enqueue])
            .await?;
        acked.answer(())?;
        let replies: Vec<(u64, u64, u64)> =
            redis::from_redis_value(redis::Value::Array(replies))
                .map_err(|error| StoreError::reply("enqueue", error.to_string()))?;
        let mut total = EnqueueReport::default();
        for (enqueued, already_active, already_in_batch) in replies {
            total += EnqueueReport {
                enqueued,
                already_active,
                already_in_batch,
            };
        }
        Ok(total)
    }
}
