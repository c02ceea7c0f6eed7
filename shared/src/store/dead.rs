//! Dead letters (list, requeue, purge) and cancelling a login's job.

use std::time::Duration;

use redis::{AsyncCommands, Value};

use super::{Store, StoreError, millis, reply};
use crate::{JobId, LoginId, Product};

/// Which finished jobs [`Store::purge`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeSet {
    /// Every finished job (retention).
    Finished,
    /// Failed and timed-out jobs only.
    Dead,
}

/// Where a `dead retry --all` walk is: its bound and cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWalk {
    /// Only dead letters that died at or before this (Redis ms) are walked;
    /// `None` before the first page (the first page sets it to Redis' now).
    pub bound_ms: Option<u64>,
    /// The last (score, id) walked.
    pub after: Option<(u64, JobId)>,
    /// Marks the jobs this walk requeued (random, one per walk).
    pub run: String,
    /// True once the walk reached the bound.
    pub done: bool,
}

impl DeadWalk {
    /// A walk from the oldest dead letter.
    pub fn start() -> Self {
        DeadWalk {
            bound_ms: None,
            after: None,
            run: format!("{:032x}", rand::random::<u128>()),
            done: false,
        }
    }
}

/// What one page of a dead-letter walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadPage {
    /// Dead letters requeued.
    pub requeued: u64,
    /// Left dead: their login has another unfinished job.
    pub skipped: u64,
    /// Ids whose job hash was gone, dropped from the indexes.
    pub orphans: u64,
}

impl Store {
    /// Cancels the login's unfinished job of `product`; returns its id, or
    /// `None` when the login has none. A worker holding the job is fenced out.
    pub async fn cancel(
        &self,
        login: &LoginId,
        product: Product,
    ) -> Result<Option<JobId>, StoreError> {
        let mut conn = self.conn.clone();
        const OP: &str = "cancel";
        let id: Value = self
            .invoke(&self.scripts.cancel)
            .arg(login.to_string())
            .arg(product.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        match id {
            Value::Int(_) => Ok(None),
            id => reply::job_id(OP, &id).map(Some),
        }
    }

    /// Ids of up to `limit` dead letters (failed or timed out) from
    /// position `offset`, oldest first.
    pub async fn dead_ids(&self, offset: usize, limit: usize) -> Result<Vec<JobId>, StoreError> {
        let mut conn = self.conn.clone();
        let start = isize::try_from(offset).unwrap_or(isize::MAX);
        let stop = start.saturating_add(isize::try_from(limit).unwrap_or(isize::MAX)) - 1;
        const OP: &str = "ZRANGE dead";
        let ids: Vec<String> = conn
            .zrange(self.keys.dead(), start, stop)
            .await
            .map_err(StoreError::command(OP))?;
        ids.iter().map(|id| reply::parse_job_id(OP, id)).collect()
    }

    /// How many dead letters there are.
    pub async fn dead_count(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        conn.zcard(self.keys.dead())
            .await
            .map_err(StoreError::command("ZCARD dead"))
    }

    /// Requeues dead letters as fresh runs; returns (requeued, skipped).
    /// Skipped: not dead, or the login already has an unfinished job.
    pub async fn retry_dead(&self, ids: &[JobId]) -> Result<(u64, u64), StoreError> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.retry_dead);
        for id in ids {
            call.arg(id.to_string());
        }
        call.invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("retry_dead"))
    }

    /// Deletes dead letters for good; returns (removed, skipped). Skipped:
    /// not a dead letter (any more).
    pub async fn purge_dead(&self, ids: &[JobId]) -> Result<(u64, u64), StoreError> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.purge_dead);
        for id in ids {
            call.arg(id.to_string());
        }
        call.invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("purge_dead"))
    }

    /// Requeues the next page of at most `limit` dead letters of `walk`
    /// (see [`DeadWalk`]) and moves its cursor. Call until `walk.done`:
    /// each dead letter present at the first page is requeued once, even
    /// while workers send requeued jobs back to `dead`. `product` limits
    /// the walk to dead letters of that product (`None`: every product).
    pub async fn retry_dead_page(
        &self,
        walk: &mut DeadWalk,
        limit: usize,
        product: Option<Product>,
    ) -> Result<DeadPage, StoreError> {
        const OP: &str = "retry_dead_page";
        let mut conn = self.conn.clone();
        let (after_score, after_id) = walk
            .after
            .as_ref()
            .map_or((-1, String::new()), |(score, id)| {
                (i64::try_from(*score).unwrap_or(i64::MAX), id.to_string())
            });
        let answer: (u64, u64, u64, u64, i64, String, i64) = self
            .invoke(&self.scripts.retry_dead_page)
            .arg(walk.bound_ms.map(|b| b.to_string()).unwrap_or_default())
            .arg(after_score)
            .arg(after_id)
            .arg(limit.max(1))
            .arg(&walk.run)
            .arg(product.map_or("", Product::as_str))
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let (requeued, skipped, orphans, bound_ms, next_score, next_id, done) = answer;
        walk.bound_ms = Some(bound_ms);
        if let Ok(score) = u64::try_from(next_score) {
            walk.after = Some((score, reply::parse_job_id(OP, &next_id)?));
        }
        walk.done = done == 1;
        Ok(DeadPage {
            requeued,
            skipped,
            orphans,
        })
    }

    /// Deletes up to `limit` jobs that finished more than `older_than` ago:
    /// from every finished job (`retention`) or only the dead letters.
    /// Returns how many ids were removed.
    pub async fn purge(
        &self,
        set: PurgeSet,
        older_than: Duration,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let (removed, _) = self.purge_page(set, older_than, limit, None, 0).await?;
        Ok(removed)
    }

    /// One page of a purge limited to `product` (`None`: every product):
    /// looks at up to `limit` jobs that finished more than `older_than`
    /// ago, past the first `offset` (the jobs of other products earlier
    /// pages kept), deletes those of `product` and returns (removed, kept).
    /// The walk is over once removed + kept is less than `limit`.
    pub async fn purge_page(
        &self,
        set: PurgeSet,
        older_than: Duration,
        limit: usize,
        product: Option<Product>,
        offset: u64,
    ) -> Result<(u64, u64), StoreError> {
        let mut conn = self.conn.clone();
        self.invoke(&self.scripts.purge)
            .arg(match set {
                PurgeSet::Finished => "finished",
                PurgeSet::Dead => "dead",
            })
            .arg(millis(older_than))
            .arg(limit)
            .arg(product.map_or("", Product::as_str))
            .arg(offset)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("purge"))
    }
}
