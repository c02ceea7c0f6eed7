//! The registry of logins `flinkq refresh` enqueues.

use redis::AsyncCommands;

use super::{ENQUEUE_CHUNK, Store, StoreError};
use crate::LoginId;

impl Store {
    /// Adds logins to the registry; returns how many were new.
    pub async fn register(&self, logins: &[LoginId]) -> Result<u64, StoreError> {
        if logins.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut added = 0;
        for chunk in logins.chunks(ENQUEUE_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let n: u64 = conn
                .sadd(self.keys.logins(), ids)
                .await
                .map_err(StoreError::command("SADD logins"))?;
            added += n;
        }
        Ok(added)
    }

    /// Removes logins from the registry; returns how many were there.
    pub async fn unregister(&self, logins: &[LoginId]) -> Result<u64, StoreError> {
        if logins.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = logins.iter().map(ToString::to_string).collect();
        conn.srem(self.keys.logins(), ids)
            .await
            .map_err(StoreError::command("SREM logins"))
    }

    /// One page of the registry: the next cursor (0 when done) and logins.
    /// Entries that are not loginIds (written by something else) are skipped.
    pub async fn registered_page(&self, cursor: u64) -> Result<(u64, Vec<LoginId>), StoreError> {
        let mut conn = self.conn.clone();
        let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(self.keys.logins())
            .arg(cursor)
            .arg("COUNT")
            .arg(ENQUEUE_CHUNK)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("SSCAN logins"))?;
        Ok((
            next,
            ids.iter()
                .filter_map(|id| LoginId::parse(id).ok())
                .collect(),
        ))
    }

    /// How many logins are registered.
    pub async fn registered_count(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        conn.scard(self.keys.logins())
            .await
            .map_err(StoreError::command("SCARD logins"))
    }
}
