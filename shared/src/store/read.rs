//! Read models: jobs, per-state counts, batches, batch events and the
//! queue gauges, as the CLI and the metrics show them.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{StateCounts, Store, StoreError, reply};
use crate::{JobId, JobSnapshot, LoginId, Product};

/// One batch, for `flinkq batches`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchSummary {
    /// Its name.
    pub name: String,
    /// First enqueue (ms).
    pub created_ms: u64,
    /// When its last unfinished job finished (ms), if it has.
    pub completed_ms: Option<u64>,
    /// Per-state counts.
    pub counts: StateCounts,
}

/// A `batch_completed` event from the `events` stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchCompleted {
    /// Stream entry id.
    pub id: String,
    /// The batch.
    pub batch: String,
    /// Its counts when it completed.
    pub counts: StateCounts,
}

impl BatchCompleted {
    /// A `batch_completed` stream entry; `None` for other entry types.
    pub(crate) fn from_entry(id: String, fields: &HashMap<String, String>) -> Option<Self> {
        if fields.get("type").map(String::as_str) != Some("batch_completed") {
            return None;
        }
        let numbers = fields
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.parse::<i64>().ok()?)))
            .collect();
        Some(BatchCompleted {
            id,
            batch: fields.get("batch").cloned().unwrap_or_default(),
            counts: StateCounts::from_hash(&numbers),
        })
    }
}

/// The queue gauges: one cheap script call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs due now (waiting for a worker).
    pub due_now: u64,
    /// Jobs scheduled later (pending polls, retries).
    pub scheduled: u64,
    /// Steps leased to workers (in flight).
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
    /// Jobs ever enqueued in the namespace.
    pub enqueued_total: u64,
}

impl Store {
    /// One job by id.
    pub async fn job(&self, id: JobId) -> Result<Option<JobSnapshot>, StoreError> {
        const OP: &str = "HGETALL job";
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn
            .hgetall(self.keys.job(id))
            .await
            .map_err(StoreError::command(OP))?;
        if fields.is_empty() {
            return Ok(None);
        }
        reply::snapshot(OP, id, &fields).map(Some)
    }

    /// Jobs by id (missing ones are skipped), in one pipelined round trip.
    pub async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobSnapshot>, StoreError> {
        const OP: &str = "HGETALL jobs";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.keys.job(*id));
        }
        let mut conn = self.conn.clone();
        let hashes: Vec<HashMap<String, String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        ids.iter()
            .zip(hashes)
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(id, fields)| reply::snapshot(OP, *id, &fields))
            .collect()
    }

    /// The newest job of a login for `product`, finished or not.
    pub async fn job_for_login(
        &self,
        login: &LoginId,
        product: Product,
    ) -> Result<Option<JobSnapshot>, StoreError> {
        let mut conn = self.conn.clone();
        const OP: &str = "GET latest";
        let id: Option<String> = conn
            .get(self.keys.latest(login, product))
            .await
            .map_err(StoreError::command(OP))?;
        match id {
            Some(id) => self.job(reply::parse_job_id(OP, &id)?).await,
            None => Ok(None),
        }
    }

    /// Per-state counts of the namespace, or of one batch.
    pub async fn counts(&self, batch: Option<&str>) -> Result<StateCounts, StoreError> {
        let key = batch.map_or_else(|| self.keys.counts(), |b| self.keys.batch(b));
        let mut conn = self.conn.clone();
        let hash: HashMap<String, i64> = conn
            .hgetall(key)
            .await
            .map_err(StoreError::command("HGETALL counts"))?;
        Ok(StateCounts::from_hash(&hash))
    }

    /// Does this batch exist?
    pub async fn batch_exists(&self, batch: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        conn.exists(self.keys.batch(batch))
            .await
            .map_err(StoreError::command("EXISTS batch"))
    }

    /// The most recent batches, newest first.
    pub async fn batches(&self, limit: usize) -> Result<Vec<BatchSummary>, StoreError> {
        const OP: &str = "batches";
        let mut conn = self.conn.clone();
        let stop = isize::try_from(limit).unwrap_or(isize::MAX) - 1;
        let names: Vec<(String, f64)> = conn
            .zrevrange_withscores(self.keys.batches(), 0, stop)
            .await
            .map_err(StoreError::command(OP))?;
        let mut pipe = redis::pipe();
        for (name, _) in &names {
            pipe.hgetall(self.keys.batch(name));
        }
        let hashes: Vec<HashMap<String, i64>> = if names.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn)
                .await
                .map_err(StoreError::command(OP))?
        };
        Ok(names
            .into_iter()
            .zip(hashes)
            .map(|((name, created), hash)| BatchSummary {
                name,
                created_ms: created as u64,
                completed_ms: hash.get("completed").map(|ms| ms.unsigned_abs()),
                counts: StateCounts::from_hash(&hash),
            })
            .collect())
    }

    /// `batch_completed` events, oldest first (at most `limit`).
    pub async fn batch_events(&self, limit: usize) -> Result<Vec<BatchCompleted>, StoreError> {
        let entries = self
            .stream_range(&self.keys.events(), None, limit, "XRANGE events")
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(id, fields)| BatchCompleted::from_entry(id, &fields))
            .collect())
    }

    /// The queue gauges.
    pub async fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let mut conn = self.conn.clone();
        let (due_now, scheduled, leased, dead, enqueued_total): (u64, u64, u64, u64, u64) = self
            .invoke(&self.scripts.stats)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("stats"))?;
        Ok(QueueStats {
            due_now,
            scheduled,
            leased,
            dead,
            enqueued_total,
        })
    }
}
