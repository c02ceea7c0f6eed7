//! What the store asks Redis about Redis itself (not about flinkq's keys).

use std::collections::HashMap;

use super::{Store, StoreError};

impl Store {
    /// Redis' `maxmemory-policy`, e.g. `noeviction` or `allkeys-lru`.
    /// Every policy but `noeviction` lets Redis delete keys under memory
    /// pressure: jobs, leases and counters would silently vanish. Managed
    /// Redis often refuses `CONFIG`: that is an error the caller may ignore.
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        // a map in RESP3, a flat [name, value] array in RESP2: both read as a map
        let mut answer: HashMap<String, String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("CONFIG GET maxmemory-policy"))?;
        Ok(answer.remove("maxmemory-policy"))
    }
}
