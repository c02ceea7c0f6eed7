//! A consumer group on the `events` stream, so that each batch completion
//! is handed to one of many workers (the batch webhook) and redelivered if
//! that worker dies before acknowledging it.

use std::time::Duration;

use redis::Value;

use super::{BatchCompleted, Store, StoreError, reply};

/// One entry handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Stream entry id: acknowledge it with [`Store::ack_events`].
    pub id: String,
    /// The completion it carries; `None` for entry types this version does
    /// not know (acknowledge and skip them).
    pub completed: Option<BatchCompleted>,
}

impl Store {
    /// Creates consumer group `group` on `events` (and the stream), reading
    /// entries added from now on; an existing group is left as it is.
    pub async fn create_event_group(&self, group: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.events())
            .arg(group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            other => other.map_err(StoreError::command("XGROUP CREATE events")),
        }
    }

    /// Up to `count` entries for `consumer`: first those pending longer than
    /// `reclaim_after` (their consumer died or failed to deliver them), then
    /// new ones. Never blocks (the connection is shared).
    pub async fn read_event_group(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        reclaim_after: Duration,
    ) -> Result<Vec<GroupEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.keys.events();
        // XAUTOCLAIM key group consumer min-idle start COUNT n -> [next, entries, deleted]
        let claimed: Value = redis::cmd("XAUTOCLAIM")
            .arg(&key)
            .arg(group)
            .arg(consumer)
            .arg(u64::try_from(reclaim_after.as_millis()).unwrap_or(u64::MAX))
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("XAUTOCLAIM events"))?;
        let mut entries = reply::array(&claimed)
            .and_then(|parts| parts.get(1))
            .map(entries_of)
            .unwrap_or_default();
        if entries.len() < count {
            // XREADGROUP ... STREAMS key > -> [[key, entries]] or nil
            let fresh: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(count - entries.len())
                .arg("STREAMS")
                .arg(&key)
                .arg(">")
                .query_async(&mut conn)
                .await
                .map_err(StoreError::command("XREADGROUP events"))?;
            let streams = reply::array(&fresh).unwrap_or_default();
            for stream in streams {
                if let Some(list) = reply::array(stream).and_then(|s| s.get(1)) {
                    entries.extend(entries_of(list));
                }
            }
        }
        Ok(entries)
    }

    /// Acknowledges delivered entries.
    pub async fn ack_events(&self, group: &str, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        redis::cmd("XACK")
            .arg(self.keys.events())
            .arg(group)
            .arg(ids)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(StoreError::command("XACK events"))
    }
}

/// A stream entry list as group entries.
fn entries_of(list: &Value) -> Vec<GroupEntry> {
    reply::stream_entries(list)
        .into_iter()
        .map(|(id, fields)| GroupEntry {
            completed: BatchCompleted::from_entry(id.clone(), &fields),
            id,
        })
        .collect()
}
