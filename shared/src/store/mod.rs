//! The Redis store: every change of job state is one atomic Lua script.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `job:<id>` | hash | the job record (see [`crate::JobSnapshot`]); `<id>` is a UUIDv7 chosen by the enqueuer, `token` the fencing token of the claim holding it, `commit_id` the last applied commit, `dead_retry` the `dead retry --all` walk that last requeued it |
//! | `active:<loginId>` | string | id of the login's unfinished job (dedupe) |
//! | `latest:<loginId>` | string | id of the login's newest job |
//! | `due:high`, `due`, `due:low` | zset | job id → when its next step may run (ms); claimed in that order |
//! | `leases` | zset | job id → when the current claim expires (ms) |
//! | `deadlines` | zset | job id → its bound (ms): the polling deadline, or before the first session the authorize deadline |
//! | `counts`, `batch:<b>` | hash | per-state counters |
//! | `batches` | zset | batch name → first enqueue (ms) |
//! | `dead` | zset | failed and timed-out job ids by finish time |
//! | `finished` | zset | every finished job id by finish time (retention) |
//! | `reap:sweep` | hash | where the reaper's orphan sweep resumes in each due queue, `dead` and `finished` (ZSCAN cursors) |
//! | `logins` | set | the registry `flinkq refresh` enqueues |
//! | `events` | stream | one `batch_completed` entry per batch completion, with its counts |
//! | `results` | stream | one entry per finished job: job, login, batch, state, and `sink` + `location` of the payload or the `error` code |
//! | `result:<loginId>` | hash | the login's newest result: job, login (checked by every reader), stored, sink (`file`/`redis`), data (path or gzip payload); with a TTL |
//! | `schedule:tick:<ms>` | string | per-tick lease of `flinkq schedule`: the replica running the tick (renewed while it runs; adopted by another replica if it expires mid-run) |
//! | `schedule:run:<ms>` | hash | one scheduler run: replica, batch, kind, state, enqueued, already_active |
//! | `schedule:runs` | zset | tick (ms) of the recorded runs (newest 1000 kept) |
//! | `schedule:last` | string | the newest tick a scheduler ran, or its first-start baseline (ms) |
//!
//! Time inside scripts is Redis `TIME`, so workers on many hosts share one clock.
//!
//! Nothing here depends on Redis keeping its data: job ids (UUIDv7), claim
//! tokens and commit ids are random values chosen by the clients, so none
//! repeats after a FLUSHALL, a restart without persistence or a failover
//! that lost writes; every commit and every result read checks the login.

mod counts;
mod error;
mod event_group;
mod keys;
mod reply;
mod results;
mod schedule;
mod scripts;
mod server;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Value};

pub use counts::StateCounts;
pub use error::{StoreError, redact_url};
pub use event_group::GroupEntry;
pub use keys::Keys;
pub use results::ResultEntry;
pub use schedule::{AdoptedRun, RunKind, SCHEDULE_RUNS_KEPT, TickClaim, TickRequest};
use scripts::Scripts;

use crate::{
    ClaimToken, CommitId, JobId, JobSnapshot, LoginId, Priority, ResultRecord, Transition,
};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `redis://` or `rediss://` URL (may carry a password).
    pub url: String,
    /// Namespace: jobs of different namespaces never meet.
    pub namespace: String,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up waiting for one answer after this long.
    pub response_timeout: Duration,
    /// CA certificate (PEM) for `rediss://`, instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl StoreConfig {
    /// Defaults for `url` and `namespace`: 2 s to connect, 5 s per answer.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            namespace: namespace.into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

/// Logins per enqueue script call: large enough to amortise round trips,
/// small enough not to block Redis for long.
pub const ENQUEUE_CHUNK: usize = 1_000;

/// What an enqueue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnqueueReport {
    /// New jobs created.
    pub enqueued: u64,
    /// Logins skipped because they already have an unfinished job.
    pub already_active: u64,
    /// Logins skipped because their newest job already belongs to this
    /// batch (an enqueue run twice).
    pub already_in_batch: u64,
}

impl std::ops::AddAssign for EnqueueReport {
    fn add_assign(&mut self, other: EnqueueReport) {
        self.enqueued += other.enqueued;
        self.already_active += other.already_active;
        self.already_in_batch += other.already_in_batch;
    }
}

/// The result of one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Redis' clock at the claim (ms).
    pub now_ms: u64,
    /// Earliest due time still waiting, if any (ms).
    pub next_due_ms: Option<u64>,
    /// The claimed jobs.
    pub jobs: Vec<JobSnapshot>,
}

/// The global rate limit toward Flinks, shared by every worker of a namespace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Calls per second after the burst; 0 means no limit.
    pub per_second: f64,
    /// Calls allowed at once.
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const NONE: RateLimit = RateLimit {
        per_second: 0.0,
        burst: 1,
    };
}

/// What [`Store::begin_step`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Go: the claim holds and the lease is renewed.
    Held,
    /// The claim was lost: make no call.
    Lost,
    /// Over the rate limit: call `begin_step` again after this long.
    Throttled(Duration),
}

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

/// Which finished jobs [`Store::purge`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeSet {
    /// Every finished job (retention).
    Finished,
    /// Failed and timed-out jobs only.
    Dead,
}

/// What a reap did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Expired leases put back in `due`.
    pub requeued: u64,
    /// Jobs finished as `timed_out`.
    pub timed_out: u64,
    /// Index entries dropped because their job hash is gone (evicted or
    /// deleted).
    pub orphans: u64,
}

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The transition was applied now.
    Applied,
    /// This commit id was applied before: a retry of a commit whose answer
    /// was lost. Nothing changed now.
    AlreadyApplied,
    /// The caller's claim is stale (token, lease or login do not match, or
    /// the job is gone): nothing changed.
    Fenced,
}

impl CommitOutcome {
    /// True when the transition is in the store (now or before).
    pub fn is_applied(self) -> bool {
        self != CommitOutcome::Fenced
    }
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

/// A connection to flinkq's keys in one namespace. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Arc<Scripts>,
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects and checks Redis answers (`PING`), so a wrong URL or a Redis
    /// that is down is reported at start, not at the first job.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let url = redact_url(&config.url);
        let bad_url = |source| StoreError::BadUrl {
            url: url.clone(),
            source,
        };
        let client = match &config.ca_file {
            None => redis::Client::open(config.url.as_str()).map_err(bad_url)?,
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|source| StoreError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(config.url.as_str(), certs).map_err(bad_url)?
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let unreachable = |source| StoreError::Unreachable {
            url: url.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(unreachable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(Store {
            conn,
            keys: Keys::new(&config.namespace),
            scripts: Arc::new(Scripts::new()),
            url,
        })
    }

    /// The key schema of this store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection for commands the store has no method for (tests, tools).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Enqueues one normal-priority job per login not already active.
    pub async fn enqueue(
        &self,
        batch: &str,
        logins: &[LoginId],
    ) -> Result<EnqueueReport, StoreError> {
        self.enqueue_with(batch, Priority::Normal, logins).await
    }

    /// Enqueues one job per login not already active, at `priority`, in
    /// chunks of [`ENQUEUE_CHUNK`] pipelined together.
    pub async fn enqueue_with(
        &self,
        batch: &str,
        priority: Priority,
        logins: &[LoginId],
    ) -> Result<EnqueueReport, StoreError> {
        let mut pipe = redis::pipe();
        for chunk in logins.chunks(ENQUEUE_CHUNK) {
            let mut call = self.scripts.enqueue.key(self.keys.prefix());
            call.arg(batch).arg(priority.as_str());
            for login in chunk {
                call.arg(login.to_string()).arg(JobId::new().to_string());
            }
            pipe.invoke_script(&call);
        }
        if logins.is_empty() {
            return Ok(EnqueueReport::default());
        }
        self.load_scripts(&[&self.scripts.enqueue]).await?;
        let mut conn = self.conn.clone();
        let replies: Vec<(u64, u64, u64)> = pipe
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("enqueue"))?;
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

    /// Claims up to `max` due jobs for `lease`, with the default authorize
    /// timeout (see [`Store::claim_bounded`]).
    pub async fn claim(&self, max: usize, lease: Duration) -> Result<Claimed, StoreError> {
        self.claim_bounded(max, lease, crate::Policy::default().authorize_timeout)
            .await
    }

    /// Claims up to `max` due jobs for `lease`. A job's first claim starts
    /// its clock and indexes its authorize deadline, `authorize_timeout`
    /// later, in `deadlines`, so the reaper ends it there if it never gets a
    /// session, even when no worker claims it again.
    pub async fn claim_bounded(
        &self,
        max: usize,
        lease: Duration,
        authorize_timeout: Duration,
    ) -> Result<Claimed, StoreError> {
        const OP: &str = "claim";
        let mut conn = self.conn.clone();
        let value: Value = self
            .scripts
            .claim
            .key(self.keys.prefix())
            .arg(max)
            .arg(millis(lease))
            .arg(ClaimToken::random_base())
            .arg(millis(authorize_timeout))
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command(OP))?;
        let parts = reply::array(&value).ok_or_else(|| StoreError::reply(OP, "not an array"))?;
        let [now, next_due, jobs] = parts else {
            return Err(StoreError::reply(OP, "expected 3 parts"));
        };
        let now_ms = reply::int(now).ok_or_else(|| StoreError::reply(OP, "bad clock"))?;
        let next_due_ms = reply::int(next_due).filter(|n| *n >= 0).map(|n| n as u64);
        let jobs = reply::array(jobs)
            .unwrap_or_default()
            .iter()
            .map(|job| {
                let items =
                    reply::array(job).ok_or_else(|| StoreError::reply(OP, "job not an array"))?;
                let (id, fields) = items
                    .split_first()
                    .ok_or_else(|| StoreError::reply(OP, "empty job"))?;
                let id = reply::job_id(OP, id)?;
                reply::snapshot(OP, id, &reply::field_map(fields))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Claimed {
            now_ms: now_ms as u64,
            next_due_ms,
            jobs,
        })
    }

    /// Applies `t` to `job` if the claim it was read under still holds (its
    /// token and lease, and the job still belongs to its login), under a
    /// fresh commit id.
    pub async fn commit(
        &self,
        job: &JobSnapshot,
        t: &Transition,
    ) -> Result<CommitOutcome, StoreError> {
        self.commit_with_result(job, CommitId::random(), t, None)
            .await
    }

    /// [`Store::commit`] under `commit_id` (the same for every retry of one
    /// commit, so a retry after a lost answer reads
    /// [`CommitOutcome::AlreadyApplied`]), recording where a succeeded job's
    /// payload is (or storing the payload itself) in the same atomic step.
    pub async fn commit_with_result(
        &self,
        job: &JobSnapshot,
        commit_id: CommitId,
        t: &Transition,
        result: Option<&ResultRecord>,
    ) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.conn.clone();
        let opt = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let error = t.error.as_ref();
        let answer: i64 = self
            .scripts
            .commit
            .key(self.keys.prefix())
            .arg(job.id.to_string())
            .arg(token_arg(job.token.as_ref()))
            .arg(job.login.to_string())
            .arg(commit_id.to_string())
            .arg(t.state.as_str())
            .arg(opt(t.due_ms))
            .arg(t.request_id.as_deref().unwrap_or_default())
            .arg(opt(t.deadline_ms))
            .arg(t.attempts)
            .arg(t.polls)
            .arg(t.auths)
            .arg(t.retries)
            .arg(error.map(|e| e.code.as_str()).unwrap_or_default())
            .arg(opt(error.and_then(|e| e.http_status).map(u64::from)))
            .arg(error.map(|e| e.message.as_str()).unwrap_or_default())
            .arg(&t.last)
            .arg(result.map_or("", ResultRecord::sink))
            .arg(result.map_or(&[][..], ResultRecord::data))
            .arg(result.map_or(0, |r| millis(r.ttl()).max(1)))
            .arg(t.sessions)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("commit"))?;
        Ok(match answer {
            1 => CommitOutcome::Applied,
            2 => CommitOutcome::AlreadyApplied,
            _ => CommitOutcome::Fenced,
        })
    }

    /// Settles a commit whose answer was lost, once the caller stopped
    /// retrying it: true if `commit_id` was applied. False is final: the
    /// claim's token is deleted, so the lost commit can no longer apply
    /// should it still reach Redis.
    pub async fn resolve_commit(
        &self,
        job: &JobSnapshot,
        commit_id: CommitId,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let applied: i64 = self
            .scripts
            .resolve_commit
            .key(self.keys.prefix())
            .arg(job.id.to_string())
            .arg(token_arg(job.token.as_ref()))
            .arg(commit_id.to_string())
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("resolve_commit"))?;
        Ok(applied == 1)
    }

    /// Extends the leases still held among `held` to now + `lease`; answers,
    /// in order, whether each is still held.
    pub async fn extend(
        &self,
        lease: Duration,
        held: &[(JobId, ClaimToken)],
    ) -> Result<Vec<bool>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut call = self.scripts.extend.key(self.keys.prefix());
        call.arg(millis(lease));
        for (id, token) in held {
            call.arg(id.to_string()).arg(token.as_str());
        }
        let flags: Vec<i64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("extend"))?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Right before a call to Flinks, in one script call: confirms the claim
    /// still holds and renews the lease, applies the global rate limit, and
    /// records that the job's next call may come no sooner than `spacing`
    /// from now, even if this worker dies mid-call.
    pub async fn begin_step(
        &self,
        id: JobId,
        token: &ClaimToken,
        lease: Duration,
        spacing: Duration,
        limit: RateLimit,
    ) -> Result<Begin, StoreError> {
        let mut conn = self.conn.clone();
        let answer: i64 = self
            .scripts
            .begin
            .key(self.keys.prefix())
            .arg(millis(lease))
            .arg(id.to_string())
            .arg(token.as_str())
            .arg(millis(spacing))
            .arg(limit.per_second)
            .arg(limit.burst)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("begin"))?;
        Ok(match answer {
            1 => Begin::Held,
            0 => Begin::Lost,
            wait => Begin::Throttled(Duration::from_millis(wait.unsigned_abs())),
        })
    }

    /// Puts expired leases back in `due` and times out jobs past their
    /// deadline, at most `limit` of each per call; drops index entries whose
    /// job hash is gone, sweeping about `limit` entries of every other index
    /// per call.
    pub async fn reap(&self, limit: usize) -> Result<Reaped, StoreError> {
        let mut conn = self.conn.clone();
        let (requeued, timed_out, orphans): (u64, u64, u64) = self
            .scripts
            .reap
            .key(self.keys.prefix())
            .arg(limit)
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("reap"))?;
        Ok(Reaped {
            requeued,
            timed_out,
            orphans,
        })
    }

    /// Gives back claimed steps that never ran; returns how many were released.
    pub async fn release(&self, held: &[(JobId, ClaimToken)]) -> Result<u64, StoreError> {
        if held.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut call = self.scripts.release.key(self.keys.prefix());
        for (id, token) in held {
            call.arg(id.to_string()).arg(token.as_str());
        }
        call.invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("release"))
    }

    /// Cancels the login's unfinished job; returns its id, or `None` when
    /// the login has none. A worker holding the job is fenced out.
    pub async fn cancel(&self, login: &LoginId) -> Result<Option<JobId>, StoreError> {
        let mut conn = self.conn.clone();
        const OP: &str = "cancel";
        let id: Value = self
            .scripts
            .cancel
            .key(self.keys.prefix())
            .arg(login.to_string())
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

    /// Requeues dead letters as fresh runs; returns (requeued, skipped).
    /// Skipped: not dead, or the login already has an unfinished job.
    pub async fn retry_dead(&self, ids: &[JobId]) -> Result<(u64, u64), StoreError> {
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let mut conn = self.conn.clone();
        let mut call = self.scripts.retry_dead.key(self.keys.prefix());
        for id in ids {
            call.arg(id.to_string());
        }
        call.invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("retry_dead"))
    }

    /// Requeues the next page of at most `limit` dead letters of `walk`
    /// (see [`DeadWalk`]) and moves its cursor. Call until `walk.done`:
    /// each dead letter present at the first page is requeued once, even
    /// while workers send requeued jobs back to `dead`.
    pub async fn retry_dead_page(
        &self,
        walk: &mut DeadWalk,
        limit: usize,
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
            .scripts
            .retry_dead_page
            .key(self.keys.prefix())
            .arg(walk.bound_ms.map(|b| b.to_string()).unwrap_or_default())
            .arg(after_score)
            .arg(after_id)
            .arg(limit.max(1))
            .arg(&walk.run)
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
        let mut conn = self.conn.clone();
        self.scripts
            .purge
            .key(self.keys.prefix())
            .arg(match set {
                PurgeSet::Finished => "finished",
                PurgeSet::Dead => "dead",
            })
            .arg(millis(older_than))
            .arg(limit)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("purge"))
    }

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
            .scripts
            .stats
            .key(self.keys.prefix())
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

    /// The newest job of a login, finished or not.
    pub async fn job_for_login(&self, login: &LoginId) -> Result<Option<JobSnapshot>, StoreError> {
        let mut conn = self.conn.clone();
        const OP: &str = "GET latest";
        let id: Option<String> = conn
            .get(self.keys.latest(login))
            .await
            .map_err(StoreError::command(OP))?;
        match id {
            Some(id) => self.job(reply::parse_job_id(OP, &id)?).await,
            None => Ok(None),
        }
    }

    /// Loads scripts before a pipeline uses them (EVALSHA in a pipeline cannot
    /// fall back to EVAL on NOSCRIPT).
    async fn load_scripts(&self, scripts: &[&redis::Script]) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for script in scripts {
            script
                .load_async(&mut conn)
                .await
                .map_err(StoreError::command("SCRIPT LOAD"))?;
        }
        Ok(())
    }
}

/// A claim token as a script argument: none (never matches a stored token)
/// is the empty string.
fn token_arg(token: Option<&ClaimToken>) -> &str {
    token.map_or("", ClaimToken::as_str)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
