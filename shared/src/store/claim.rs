//! The fenced claim protocol: claiming due jobs, and the [`Claim`] that is
//! the only way to act on a claimed job (begin a call, renew, give back,
//! commit — see `commit.rs`), plus the reaper that ends the claims of dead
//! workers.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use redis::Value;

use super::reply::JobFields;
use super::{Store, StoreError, fields, millis, reply};
use crate::{ClaimToken, JobId, JobSnapshot, Priority};

/// The fields a claimed job's snapshot is read from: job-hash fields, read
/// by the worker with `HGETALL` right after the claim (what a
/// [`JobSnapshot`] reads, and the last commit id, for the commit trace),
/// then four the claim decides itself and which override whatever the hash
/// holds: `finished` (none: a job in a terminal state is never claimed, so
/// its stored value, absent or emptied by a dead retry, is not read),
/// `due`, `begun` and `queue` (see `claim.lua`). The claim's `token` is in
/// the hash, written by the claim; it is checked there against the one the
/// claim returned.
///
/// Why `HGETALL` from Rust and not the fields read inside `claim.lua`: Redis
/// turns each value a script reads into a Lua string and each value it
/// returns back into a reply, while `HGETALL` copies the hash's listpack
/// into the reply in one pass. Per claimed job, Redis spent ~85k
/// instructions on the script's `HMGET` of 22 fields and the packing of
/// their values, ~38k on the script's `HMGET` of the four fields it decides
/// on plus a pipelined `HGETALL` (BENCHMARKS.md, the eighth pass of issue
/// 14).
pub const CLAIMED_FIELDS: [&str; 27] = [
    fields::LOGIN,
    fields::PRODUCT,
    fields::BATCH,
    fields::STATE,
    fields::REQUEST_ID,
    fields::DEADLINE,
    fields::STAGE,
    fields::STAGE_ACCEPTED,
    fields::ATTEMPTS,
    fields::POLLS,
    fields::AUTHS,
    fields::SESSIONS,
    fields::CLAIMS,
    fields::RETRIES,
    fields::CREATED,
    fields::STARTED,
    fields::UPDATED,
    fields::ERR_CODE,
    fields::ERR_HTTP,
    fields::ERR_MSG,
    fields::LAST,
    fields::COMMIT_ID,
    fields::TOKEN,
    fields::FINISHED,
    fields::DUE,
    fields::BEGUN,
    fields::QUEUE,
];

/// The result of one claim.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Redis' clock at the claim (ms).
    pub now_ms: u64,
    /// Earliest due time still waiting, if any (ms).
    pub next_due_ms: Option<u64>,
    /// The claimed jobs.
    pub jobs: Vec<Claim>,
}

/// A claimed job: its snapshot as claimed, the claim's fencing token, and
/// the store. Every fenced operation on the job goes through it, so no
/// caller can pair a job with another claim's token.
///
/// Derefs to the snapshot it was claimed as.
#[derive(Debug, Clone)]
pub struct Claim {
    pub(super) job: JobSnapshot,
    pub(super) token: ClaimToken,
    pub(super) store: Store,
    /// The job's `commit_id` when claimed (none before its first commit),
    /// for the commit trace (see `commit.rs`).
    pub(super) prior_commit: Option<String>,
    /// The spacing the claim recorded as the step's begin, if it began it
    /// (see [`Store::claim_to_run`]).
    pub(super) begun: Option<Duration>,
    /// The priority of the due queue the job was claimed from: its commit
    /// puts it back there.
    pub(super) queue: Priority,
}

impl std::ops::Deref for Claim {
    type Target = JobSnapshot;

    fn deref(&self) -> &JobSnapshot {
        &self.job
    }
}

/// A claim as held by a heartbeat or a shutdown: enough to renew or give it
/// back among many in one script call, obtainable only from a [`Claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    id: JobId,
    token: ClaimToken,
}

impl HeldClaim {
    /// The claimed job.
    pub fn id(&self) -> JobId {
        self.id
    }
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

/// What [`Claim::begin`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Go: the claim holds and the lease is renewed.
    Held,
    /// The claim was lost: make no call.
    Lost,
    /// Over the rate limit: call `begin` again after this long.
    Throttled(Duration),
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

impl Claim {
    fn new(
        store: &Store,
        job: JobSnapshot,
        prior_commit: Option<String>,
        begun: Option<Duration>,
        queue: Priority,
    ) -> Self {
        // a claimed snapshot always carries its token; an empty one (never
        // stored) matches nothing
        let token = job
            .token
            .clone()
            .unwrap_or_else(|| ClaimToken::from_stored(""));
        Claim {
            job,
            token,
            store: store.clone(),
            prior_commit,
            begun,
            queue,
        }
    }

    /// A claim on `job` as if it had been claimed with the token it carries,
    /// from the normal-priority queue: lets a test forge a stale or foreign
    /// commit (another login, a token of an earlier claim).
    #[cfg(feature = "test-kit")]
    pub fn forged(store: &Store, job: JobSnapshot) -> Self {
        Claim::new(store, job, None, None, Priority::Normal)
    }

    /// The job as claimed.
    pub fn job(&self) -> &JobSnapshot {
        &self.job
    }

    /// The spacing (`not_before` − the claim's time) this claim recorded for
    /// the step, when the claim itself began it ([`Store::claim_to_run`]):
    /// until its fresh lease could have run out, the step may call Flinks
    /// without [`Claim::begin`], if it needs that same spacing.
    pub fn begun(&self) -> Option<Duration> {
        self.begun
    }

    /// This claim's handle for batched renewals and give-backs.
    pub fn held(&self) -> HeldClaim {
        HeldClaim {
            id: self.job.id,
            token: self.token.clone(),
        }
    }

    /// Right before a call to Flinks, in one script call: confirms the claim
    /// still holds and renews the lease, applies the global rate limit, and
    /// records that the job's next call may come no sooner than `spacing`
    /// from now, even if this worker dies mid-call.
    pub async fn begin(
        &self,
        lease: Duration,
        spacing: Duration,
        limit: RateLimit,
    ) -> Result<Begin, StoreError> {
        let mut conn = self.store.conn.clone();
        let mut call = self.store.invoke(&self.store.scripts.begin);
        let answer: i64 = call
            .arg(millis(lease))
            .arg(self.job.id.to_string())
            .arg(self.token.as_str())
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

    /// Renews this claim's lease to now + `lease`; false if it is lost.
    pub async fn extend(&self, lease: Duration) -> Result<bool, StoreError> {
        let flags = self.store.extend(lease, &[self.held()]).await?;
        Ok(flags.first().copied().unwrap_or(false))
    }

    /// Gives the step back unstarted: due again now, and the claim not
    /// counted against the job. False if the claim was already lost.
    pub async fn release(&self) -> Result<bool, StoreError> {
        Ok(self.store.release(&[self.held()]).await? == 1)
    }
}

impl Store {
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
        self.claim_steps(max, lease, authorize_timeout, None).await
    }

    /// Claims up to `max` due jobs for `lease`, as [`Store::claim_bounded`],
    /// for steps about to run at once, and begins them in the same script:
    /// records each job's `not_before` (now + `poll_interval` for a poll, now
    /// for an authorize), the write of [`Claim::begin`], so a step whose
    /// claim is fresh calls Flinks without another round trip. For a caller
    /// with no rate limit (the rate limit is applied per call by `begin`).
    pub async fn claim_to_run(
        &self,
        max: usize,
        lease: Duration,
        authorize_timeout: Duration,
        poll_interval: Duration,
    ) -> Result<Claimed, StoreError> {
        self.claim_steps(max, lease, authorize_timeout, Some(poll_interval))
            .await
    }

    async fn claim_steps(
        &self,
        max: usize,
        lease: Duration,
        authorize_timeout: Duration,
        begin: Option<Duration>,
    ) -> Result<Claimed, StoreError> {
        let decided = self.run_claim(max, lease, authorize_timeout, begin).await?;
        self.claimed_from(&decided).await
    }

    /// As [`Store::claim`], with `between` run after the claim and before
    /// the claimed jobs' fields are read: lets a test change a job in that
    /// window (cancel it, take its claim) as another client could.
    #[cfg(feature = "test-kit")]
    pub async fn claim_with_a_pause(
        &self,
        max: usize,
        lease: Duration,
        between: impl std::future::Future<Output = ()>,
    ) -> Result<Claimed, StoreError> {
        let timeout = crate::Policy::default().authorize_timeout;
        let decided = self.run_claim(max, lease, timeout, None).await?;
        between.await;
        self.claimed_from(&decided).await
    }

    /// `claim.lua`: what it decided, as it answered.
    async fn run_claim(
        &self,
        max: usize,
        lease: Duration,
        authorize_timeout: Duration,
        begin: Option<Duration>,
    ) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.claim);
        call.arg(max)
            .arg(millis(lease))
            .arg(ClaimToken::random_base())
            .arg(millis(authorize_timeout))
            .arg(
                begin
                    .map(|spacing| millis(spacing).to_string())
                    .unwrap_or_default(),
            )
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("claim"))
    }

    /// The claim `value` answered, with its jobs' snapshots.
    async fn claimed_from(&self, value: &Value) -> Result<Claimed, StoreError> {
        const OP: &str = "claim";
        let parts = reply::array(value).ok_or_else(|| StoreError::reply(OP, "not an array"))?;
        let [now, next_due, jobs] = parts else {
            return Err(StoreError::reply(OP, "expected 3 parts"));
        };
        let now_ms = reply::int(now).ok_or_else(|| StoreError::reply(OP, "bad clock"))?;
        let next_due_ms = reply::int(next_due).filter(|n| *n >= 0).map(|n| n as u64);
        // (id, token, due, begun, queue) of each job, one after the other
        let list = reply::array(jobs).unwrap_or_default();
        if !list.len().is_multiple_of(CLAIM_VALUES) {
            return Err(StoreError::reply(
                OP,
                format!("expected each job's {CLAIM_VALUES} values, one job after the other"),
            ));
        }
        let decided = list
            .chunks_exact(CLAIM_VALUES)
            .map(|values| {
                let id = reply::job_id(OP, &values[0])?;
                let text = |at: usize, what: &str| match &values[at] {
                    Value::BulkString(bytes) => std::str::from_utf8(bytes).map_err(|_| {
                        StoreError::reply(OP, format!("job {id}: its {what} is not text"))
                    }),
                    _ => Err(StoreError::reply(
                        OP,
                        format!("job {id}: its {what} is not text"),
                    )),
                };
                Ok(Decided {
                    id,
                    token: text(1, "token")?,
                    due: text(2, "due time")?,
                    begun: text(3, "begun spacing")?,
                    queue: text(4, "queue")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let jobs = self.read_claimed(&decided).await?;
        Ok(Claimed {
            now_ms: now_ms as u64,
            next_due_ms,
            jobs,
        })
    }

    /// The claimed jobs' snapshots, their hashes read in one pipelined round
    /// trip right after the claim. A job whose hash no longer carries its
    /// claim's token is left out: between the two calls it was cancelled
    /// (the token deleted), deleted, or its claim was lost (a failover
    /// that lost the claim's write, a lease run out and the job claimed
    /// again); any step on it would be fenced, so no step runs.
    async fn read_claimed(&self, decided: &[Decided<'_>]) -> Result<Vec<Claim>, StoreError> {
        const OP: &str = "claim: HGETALL";
        if decided.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for job in decided {
            pipe.hgetall(self.keys.job(job.id));
        }
        // The read changes nothing, so a timeout or a dropped connection is
        // retried at once, a few times: the claim is already made, and its
        // jobs, unread, would wait leased until the lease runs out (then the
        // reaper makes them due, each with a claim counted against it, as
        // after a claim whose answer was lost, which is what a read that
        // keeps failing leaves).
        let read = || async {
            let mut conn = self.conn.clone();
            pipe.query_async::<Vec<Value>>(&mut conn).await
        };
        let hashes = read
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(20))
                    .with_max_times(3),
            )
            .when(|error| {
                error.is_timeout() || error.is_connection_dropped() || error.is_io_error()
            })
            .await
            .map_err(StoreError::command(OP))?;
        if hashes.len() != decided.len() {
            return Err(StoreError::reply(
                OP,
                format!("{} hashes for {} jobs", hashes.len(), decided.len()),
            ));
        }
        let mut jobs = Vec::with_capacity(decided.len());
        for (job, hash) in decided.iter().zip(&hashes) {
            let id = job.id;
            let mut read = reply::HashFields::read(&CLAIMED_FIELDS, hash)
                .map_err(|detail| StoreError::reply(OP, format!("job {id}: {detail}")))?;
            if read.field(fields::TOKEN) != Some(job.token) {
                tracing::debug!(job = %id, "claimed job changed hands before its fields were read; not run");
                continue;
            }
            read.set(fields::FINISHED, None);
            read.set(fields::DUE, Some(job.due));
            read.set(fields::BEGUN, Some(job.begun).filter(|ms| !ms.is_empty()));
            read.set(fields::QUEUE, Some(job.queue));
            let snapshot = reply::snapshot(OP, id, &read)?;
            if snapshot.state.is_terminal() {
                tracing::debug!(job = %id, state = %snapshot.state, "claimed job finished before its fields were read; not run");
                continue;
            }
            let prior = read
                .field(fields::COMMIT_ID)
                .filter(|commit| !commit.is_empty())
                .map(str::to_owned);
            let begun = read
                .field(fields::BEGUN)
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis);
            let queue = job
                .queue
                .parse::<Priority>()
                .map_err(|e| StoreError::reply(OP, format!("job {id}: its queue: {e}")))?;
            jobs.push(Claim::new(self, snapshot, prior, begun, queue));
        }
        Ok(jobs)
    }
}

/// The values `claim.lua` returns per claimed job: id, token, due, begun,
/// queue.
const CLAIM_VALUES: usize = 5;

/// What the claim decided for one job, borrowed from its reply.
struct Decided<'a> {
    id: JobId,
    token: &'a str,
    due: &'a str,
    begun: &'a str,
    queue: &'a str,
}

impl Store {
    /// Extends the leases still held among `held` to now + `lease`; answers,
    /// in order, whether each is still held.
    pub async fn extend(
        &self,
        lease: Duration,
        held: &[HeldClaim],
    ) -> Result<Vec<bool>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.extend);
        call.arg(millis(lease));
        for claim in held {
            call.arg(claim.id.to_string()).arg(claim.token.as_str());
        }
        let flags: Vec<i64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("extend"))?;
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// Gives back claimed steps that never ran; returns how many were released.
    pub async fn release(&self, held: &[HeldClaim]) -> Result<u64, StoreError> {
        if held.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.release);
        for claim in held {
            call.arg(claim.id.to_string()).arg(claim.token.as_str());
        }
        call.invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("release"))
    }

    /// Puts expired leases back in `due` and times out jobs past their
    /// deadline, at most `limit` of each per call; drops index entries whose
    /// job hash is gone, sweeping about `limit` entries of every other index
    /// per call.
    pub async fn reap(&self, limit: usize) -> Result<Reaped, StoreError> {
        self.reap_sweeping(limit, limit).await
    }

    /// As [`Store::reap`], sweeping about `sweep` entries of every other
    /// index (0: no sweep, only the leases and deadlines that are due).
    pub async fn reap_sweeping(&self, limit: usize, sweep: usize) -> Result<Reaped, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.reap);
        let (requeued, timed_out, orphans): (u64, u64, u64) = call
            .arg(limit)
            .arg(sweep)
            .invoke_async(&mut conn)
            .await
            .map_err(StoreError::command("reap"))?;
        Ok(Reaped {
            requeued,
            timed_out,
            orphans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_job_reads_every_field_a_snapshot_needs() {
        // every field `reply::snapshot` reads is claimed: a missing one would
        // read as unset on every claimed job
        let source = include_str!("reply.rs");
        let body = &source[source.find("pub(crate) fn snapshot(").expect("snapshot")..];
        let body = &body[..body.find("\n}\n").expect("end of snapshot")];
        let mut read = 0;
        for (at, _) in body.match_indices("fields::") {
            let constant: String = body[at + 8..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            let name = constant.to_lowercase();
            assert!(
                CLAIMED_FIELDS.contains(&name.as_str()),
                "snapshot reads {name}, not claimed"
            );
            read += 1;
        }
        assert!(read > 10, "snapshot's fields not found");
    }
}
