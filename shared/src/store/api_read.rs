//! Read models of the HTTP API and console (`flinkq serve`): every job of a
//! login, one batch, jobs by product and state, finishes since a time, and
//! the live feed of job finishes and batch completions read from the
//! `results` and `events` streams.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use redis::Value;

use super::read::{BatchCompleted, BatchSummary};
use super::results::{ResultEntry, result_entry};
use super::{StateCounts, Store, StoreError, millis, reply};
use crate::{JobId, JobSnapshot, JobState, LoginId, Product};

/// One stream entry: its id and fields.
type Entry = (String, HashMap<String, String>);

/// Where a reader of the two streams is: the last entry it has seen of
/// `results` and of `events`. Written `<results id>,<events id>` (the SSE
/// event id a client sends back as `Last-Event-ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    /// Last seen `results` entry (`0-0`: none).
    pub results: String,
    /// Last seen `events` entry (`0-0`: none).
    pub events: String,
}

impl StreamCursor {
    /// Before every entry of both streams.
    pub fn start() -> Self {
        StreamCursor {
            results: "0-0".into(),
            events: "0-0".into(),
        }
    }
}

impl fmt::Display for StreamCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.results, self.events)
    }
}

/// A cursor that is not `<ms>-<n>,<ms>-<n>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an event id: send back the id of the last event received (two stream ids, <ms>-<n>,<ms>-<n>)"
)]
pub struct BadCursor(pub String);

impl FromStr for StreamCursor {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<Self, BadCursor> {
        // ids go to Redis as arguments: only well-formed ones, so a bad
        // header is the client's error (400), not Redis' (503)
        let stream_id = |part: &str| {
            let (ms, seq) = part.split_once('-')?;
            (ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()).then(|| part.to_owned())
        };
        let bad = || BadCursor(text.chars().take(100).collect());
        let (results, events) = text.split_once(',').ok_or_else(bad)?;
        Ok(StreamCursor {
            results: stream_id(results).ok_or_else(bad)?,
            events: stream_id(events).ok_or_else(bad)?,
        })
    }
}

/// Jobs by product and state (the console's overview), counted from the
/// newest jobs of each set that holds them (the due queues, `leases`,
/// `finished`): no per-product counter exists, so this reads job hashes,
/// at most a bounded number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductCounts {
    /// Every product, in [`Product::all`] order, with its counts (`total`:
    /// the jobs counted).
    pub products: Vec<(Product, StateCounts)>,
    /// False when a set held more jobs than were read: the counts then
    /// cover only the newest of it.
    pub complete: bool,
}

/// One entry of the live feed, with the cursor just after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A job finished (an entry of `results`).
    JobFinished(ResultEntry),
    /// A batch completed (a `batch_completed` entry of `events`).
    BatchCompleted(BatchCompleted),
}

impl StreamEvent {
    /// The batch it is about.
    pub fn batch(&self) -> &str {
        match self {
            StreamEvent::JobFinished(entry) => &entry.batch,
            StreamEvent::BatchCompleted(completed) => &completed.batch,
        }
    }
}

impl Store {
    /// Does Redis answer (`PING`)?
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(StoreError::command("PING"))
    }

    /// The newest job of every product of `login`, newest first (the
    /// store keeps one `latest` pointer per login and product).
    pub async fn login_jobs(&self, login: &LoginId) -> Result<Vec<JobSnapshot>, StoreError> {
        const OP: &str = "GET latest (every product)";
        let products: Vec<Product> = Product::all().collect();
        let mut pipe = redis::pipe();
        for product in &products {
            pipe.get(self.keys.latest(login, *product));
        }
        let mut conn = self.conn.clone();
        let ids: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let ids = ids
            .iter()
            .flatten()
            .map(|id| reply::parse_job_id(OP, id))
            .collect::<Result<Vec<_>, _>>()?;
        let mut jobs = self.jobs(&ids).await?;
        jobs.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.0.cmp(&a.id.0)));
        Ok(jobs)
    }

    /// One batch: when it was first enqueued, its completion and counts;
    /// `None` if no batch has that name.
    pub async fn batch_summary(&self, batch: &str) -> Result<Option<BatchSummary>, StoreError> {
        const OP: &str = "batch";
        let mut conn = self.conn.clone();
        let (created, hash): (Option<f64>, HashMap<String, i64>) = redis::pipe()
            .zscore(self.keys.batches(), batch)
            .hgetall(self.keys.batch(batch))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        if hash.is_empty() && created.is_none() {
            return Ok(None);
        }
        Ok(Some(BatchSummary {
            name: batch.to_owned(),
            created_ms: created.unwrap_or_default() as u64,
            completed_ms: hash.get("completed").map(|ms| ms.unsigned_abs()),
            counts: StateCounts::from_hash(&hash),
        }))
    }

    /// Jobs by product and state, from at most `limit` jobs (the newest) of
    /// each set that holds jobs: the three due queues, `leases` and
    /// `finished`. See [`ProductCounts`].
    pub async fn jobs_by_product(&self, limit: usize) -> Result<ProductCounts, StoreError> {
        const OP: &str = "jobs by product";
        /// Job hashes read per round trip.
        const CHUNK: usize = 1_000;
        let limit = limit.max(1);
        let mut sets: Vec<String> = self.keys.due_queues().into();
        sets.extend([self.keys.leases(), self.keys.finished()]);
        let mut pipe = redis::pipe();
        for set in &sets {
            pipe.zcard(set);
            pipe.zrevrange(set, 0, isize::try_from(limit).unwrap_or(isize::MAX) - 1);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let mut complete = true;
        let mut ids = std::collections::HashSet::new();
        for pair in answers.chunks(2) {
            let [size, members] = pair else { continue };
            if reply::int(size).unwrap_or(0) > i64::try_from(limit).unwrap_or(i64::MAX) {
                complete = false;
            }
            for member in reply::array(members).unwrap_or_default() {
                if let Some(id) = reply::text(member) {
                    ids.insert(id);
                }
            }
        }
        // members that are not job ids (written by something else) are skipped
        let ids: Vec<JobId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        let mut counts: HashMap<&'static str, StateCounts> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET")
                    .arg(self.keys.job(*id))
                    .arg(super::fields::STATE)
                    .arg(super::fields::PRODUCT);
            }
            let rows: Vec<(Option<String>, Option<String>)> = pipe
                .query_async(&mut conn)
                .await
                .map_err(StoreError::command(OP))?;
            for (state, product) in rows {
                // a job deleted between the two reads, or not a job
                let Some(state) = state.and_then(|s| s.parse::<JobState>().ok()) else {
                    continue;
                };
                // jobs stored before products existed are the default's
                let product = product
                    .and_then(|p| p.parse::<Product>().ok())
                    .unwrap_or_default();
                counts.entry(product.as_str()).or_default().add(state);
            }
        }
        Ok(ProductCounts {
            products: Product::all()
                .map(|p| (p, counts.get(p.as_str()).copied().unwrap_or_default()))
                .collect(),
            complete,
        })
    }

    /// Jobs that finished at or after `since_ms` (Redis ms): all of them,
    /// and the dead letters among them (failed or timed out). Cheap
    /// (`ZCOUNT` of `finished` and `dead`); retention deletes older ones.
    pub async fn finished_since(&self, since_ms: u64) -> Result<(u64, u64), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .zcount(self.keys.finished(), since_ms, "+inf")
            .zcount(self.keys.dead(), since_ms, "+inf")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("ZCOUNT finished dead"))
    }

    /// The cursor after the newest entry of each stream: a reader starting
    /// there sees what happens from now on.
    pub async fn stream_tails(&self) -> Result<StreamCursor, StoreError> {
        const OP: &str = "XREVRANGE (stream tails)";
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for key in [self.keys.results(), self.keys.events()] {
            pipe.cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
        }
        let (results, events): (Value, Value) = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let last = |value: &Value| {
            reply::stream_entries(value)
                .into_iter()
                .next()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id)
        };
        Ok(StreamCursor {
            results: last(&results),
            events: last(&events),
        })
    }

    /// Up to `count` entries of each stream after `cursor`, waiting up to
    /// `block` for the first one (`XREAD BLOCK`), and moves `cursor` past
    /// them. Job finishes come before batch completions of the same read.
    ///
    /// It holds its connection for up to `block`: call it only on a store
    /// of its own (its response timeout longer than `block`), never on the
    /// store other requests share.
    pub async fn read_streams(
        &self,
        cursor: &mut StreamCursor,
        count: usize,
        block: Duration,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        const OP: &str = "XREAD BLOCK results events";
        let mut conn = self.conn.clone();
        let (results_key, events_key) = (self.keys.results(), self.keys.events());
        let answer: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count.max(1))
            .arg("BLOCK")
            .arg(millis(block).max(1))
            .arg("STREAMS")
            .arg(&results_key)
            .arg(&events_key)
            .arg(&cursor.results)
            .arg(&cursor.events)
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        // [[key, entries], ...] (RESP2), or nil when the block timed out
        let mut per_stream: HashMap<String, Vec<Entry>> = HashMap::new();
        for stream in reply::array(&answer).unwrap_or_default() {
            let Some([key, entries]) = reply::array(stream) else {
                continue;
            };
            if let Some(key) = reply::text(key) {
                per_stream.insert(key, reply::stream_entries(entries));
            }
        }
        let mut events = Vec::new();
        for (id, fields) in per_stream.remove(&results_key).unwrap_or_default() {
            cursor.results.clone_from(&id);
            events.push(StreamEvent::JobFinished(result_entry(OP, id, &fields)?));
        }
        for (id, fields) in per_stream.remove(&events_key).unwrap_or_default() {
            cursor.events.clone_from(&id);
            // other entry types of `events` are skipped, the cursor moves on
            if let Some(completed) = BatchCompleted::from_entry(id, &fields) {
                events.push(StreamEvent::BatchCompleted(completed));
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::StreamCursor;

    #[test]
    fn cursors_round_trip_and_refuse_what_is_not_two_stream_ids() {
        let cursor: StreamCursor = "1795527901250-0,0-0".parse().expect("cursor");
        assert_eq!(cursor.to_string(), "1795527901250-0,0-0");
        for bad in [
            "",
            "1-0",
            "1-0,",
            "a-b,1-0",
            "1-0,1-0\r\nX: y",
            "$,$",
            "1-0,+",
        ] {
            assert!(bad.parse::<StreamCursor>().is_err(), "{bad:?}");
        }
    }
}
