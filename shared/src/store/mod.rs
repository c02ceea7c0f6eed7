//! The Redis store: every change of job state is one atomic Lua script.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `job:<id>` | hash | the job record (see [`crate::JobSnapshot`]); `<id>` is a UUIDv7 chosen by the enqueuer, `token` the fencing token of the claim holding it, `commit_id` the last applied commit, `dead_retry` the `dead retry --all` walk that last requeued it |
//! | `active:<loginId>:<product>` | string | id of the login's unfinished job of that product (dedupe: one per (login, product)) |
//! | `latest:<loginId>:<product>` | string | id of the login's newest job of that product |
//! | `due:high`, `due`, `due:low` | zset | job id → when its next step may run (ms); claimed in that order |
//! | `leases` | zset | job id → when the current claim expires (ms) |
//! | `deadlines` | zset | job id → its bound (ms): the polling deadline, or before the first session the authorize deadline |
//! | `counts`, `batch:<b>` | hash | per-state counters |
//! | `batches` | zset | batch name → first enqueue (ms) |
//! | `dead` | zset | failed and timed-out job ids by finish time |
//! | `finished` | zset | every finished job id by finish time (retention) |
//! | `ratelimit` | string | the GCRA theoretical arrival time of the global rate limit toward Flinks (ms) |
//! | `reap:sweep` | hash | where the reaper's orphan sweep resumes in each due queue, `dead` and `finished` (ZSCAN cursors) |
//! | `logins` | set | the registry `flinkq refresh` enqueues |
//! | `events` | stream | one `batch_completed` entry per batch completion, with its counts |
//! | `results` | stream | one entry per finished job: job, login, product, batch, state, and `sink` + `location` of the payload or the `error` code |
//! | `result:<loginId>:<product>` | hash | the login's newest result of that product: job, login and product (checked by every reader), stored, sink (`file`/`redis`), data (path or gzip payload); with a TTL |
//! | `schedule:tick:<ms>` | string | per-tick lease of `flinkq schedule`: the replica running the tick (renewed while it runs; adopted by another replica if it expires mid-run) |
//! | `schedule:run:<ms>` | hash | one scheduler run: replica, batch, kind, state, enqueued, already_active |
//! | `schedule:runs` | zset | tick (ms) of the recorded runs (newest 1000 kept) |
//! | `schedule:last` | string | the newest tick a scheduler ran, or its first-start baseline (ms) |
//! | `workers` | zset | worker name (`<host>:<pid>`) → when it last said it runs (Redis ms); a day kept |
//!
//! Time inside scripts is Redis `TIME`, so workers on many hosts share one clock.
//!
//! Nothing here depends on Redis keeping its data: job ids (UUIDv7), claim
//! tokens and commit ids are random values chosen by the clients, so none
//! repeats after a FLUSHALL, a restart without persistence or a failover
//! that lost writes; every commit and every result read checks the login.
//!
//! # Layout
//!
//! One file per concern: `connection` (config, connecting, script calls),
//! `claim` (claiming and the [`Claim`] that owns a claimed job's fenced
//! operations, the reaper), `commit` (named commit arguments, commit and its
//! read-back), `commit_batch` (group commit: a worker's commits several to
//! a call), `enqueue`, `dead` (dead letters and cancel), `registry`,
//! `read` (jobs, counts, batches, queue gauges), `api_read` (the HTTP
//! API's read models and its live feed), `results`, `schedule`,
//! `workers` (workers seen), `event_group`, `server`, `topology` (standalone, Sentinel or Cluster
//! behind one [`RedisConnection`]). Key names live in `keys` for Rust and Lua alike;
//! job-hash field names in `fields`.

mod api_read;
mod claim;
mod commit;
mod commit_batch;
mod connection;
mod counts;
mod dead;
mod enqueue;
mod error;
mod event_group;
pub mod fields;
mod keys;
mod read;
mod registry;
mod reply;
mod results;
mod schedule;
mod scripts;
mod server;
mod topology;
mod workers;

use std::time::Duration;

pub use api_read::{BadCursor, ProductCounts, StreamCursor, StreamEvent};
pub use claim::{Begin, Claim, Claimed, HeldClaim, RateLimit, Reaped};
pub use commit::{COMMIT_ARGS, CommitOutcome, CommitParams};
pub use commit_batch::CommitBatching;
pub use connection::{Store, StoreConfig};
pub use counts::StateCounts;
pub use dead::{DeadPage, DeadWalk, PurgeSet};
pub use enqueue::{ENQUEUE_CHUNK, EnqueueReport};
pub use error::{RedisErrorKind, StoreError, redact_url};
pub use event_group::GroupEntry;
pub use keys::{KeyName, Keys, SCRIPT_KEYS, login_record};
pub use read::{BatchCompleted, BatchSummary, QueueStats};
pub use results::ResultEntry;
pub use schedule::{AdoptedRun, RunKind, SCHEDULE_RUNS_KEPT, TickClaim, TickRequest};
pub use topology::{ClusterLink, RedisConnection, RedisMode, SentinelConnection, Topology};
pub use workers::SIGHTINGS_KEPT;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
