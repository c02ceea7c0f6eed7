//! Workers seen: each worker process writes its name and Redis' time every
//! few seconds (`worker/src/services/presence.rs`); the console lists the
//! recent ones. Sightings older than [`SIGHTINGS_KEPT`] are trimmed on each
//! write, so the set stays as small as the fleet of the last day.

use std::time::Duration;

use redis::AsyncCommands;

use super::{Store, StoreError, millis};

/// How long a worker's last sighting is kept.
pub const SIGHTINGS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// Longest worker name stored (longer ones are cut).
const NAME_MAX: usize = 200;

impl Store {
    /// Records that the worker `name` runs now.
    pub async fn worker_seen(&self, name: &str) -> Result<(), StoreError> {
        let now = self.time_ms().await?;
        let name: String = name.chars().take(NAME_MAX).collect();
        let mut conn = self.conn.clone();
        redis::pipe()
            .zadd(self.keys.workers(), name, now)
            .ignore()
            .zrembyscore(
                self.keys.workers(),
                "-inf",
                now.saturating_sub(millis(SIGHTINGS_KEPT)),
            )
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(StoreError::command("ZADD workers"))
    }

    /// Up to `limit` workers seen since `since_ms` (Redis ms), the most
    /// recently seen first, with when.
    pub async fn workers_seen(
        &self,
        since_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        let seen: Vec<(String, f64)> = conn
            .zrevrangebyscore_limit_withscores(
                self.keys.workers(),
                "+inf",
                since_ms,
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(StoreError::command("ZREVRANGEBYSCORE workers"))?;
        Ok(seen
            .into_iter()
            .map(|(name, ms)| (name, ms.max(0.0) as u64))
            .collect())
    }
}
