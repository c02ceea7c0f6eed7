//! The fenced claim protocol: claiming due jobs, and the [`Claim`] that is
//! the only way to act on a claimed job (begin a call, renew, give back,
//! commit — see `commit.rs`), plus the reaper that ends the claims of dead
//! workers.

use std::time::Duration;

use redis::Value;

use super::reply::JobFields;
use super::{Store, StoreError, fields, millis, reply};
use crate::{ClaimToken, JobId, JobSnapshot, Priority};

/// What a claim returns of each claimed job, values alone, in this order:
/// the first [`STORED_CLAIMED`] are job-hash fields, read with one `HMGET`
/// (what a [`JobSnapshot`] reads, and the last commit id, for the commit
/// trace), then the five the claim sets itself: the claim's own `token`,
/// `finished` (none: a job in a terminal state is never claimed, so its
/// stored value, absent or emptied by a dead retry, is not read), `due`,
/// `begun` and `queue`. Not `HGETALL`: the hash holds fields no claimer reads, and
/// names alone would double what Redis copies into Lua and back out to the
/// worker, on every step. `HMGET` searches the hash's listpack once per
/// field, to its end for a field the job lacks (`finished`, always): each
/// field left out of it is Redis time saved on every step.
/// `claim.lua` reads them through the binding [`lua_binding`] generates,
/// and returns them packed in one string per job (see [`reply::Packed`]).
/// A claimed job is a whole snapshot: the step plans, transitions and
/// commits from it. Two (`batch`, `updated`) no step reads today; present
/// in every claimed job's hash (no search to the end), they cost Redis
/// little, and a partial snapshot would read them as unset to whatever code
/// reads them next.
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

/// How many of [`CLAIMED_FIELDS`], from the first, are stored in the job hash.
const STORED_CLAIMED: usize = CLAIMED_FIELDS.len() - 5;

/// The Lua lines that name `claim.lua`'s fields, prepended to it:
/// `STORED_FIELDS` (the `HMGET` list) and `F.<name>`, each field's position
/// in a claimed job's values.
pub(super) fn lua_binding() -> String {
    let stored: Vec<String> = CLAIMED_FIELDS[..STORED_CLAIMED]
        .iter()
        .map(|name| format!("'{name}'"))
        .collect();
    let positions: Vec<String> = CLAIMED_FIELDS
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} = {}", i + 1))
        .collect();
    format!(
        "-- a claimed job's fields by position (generated from CLAIMED_FIELDS in shared/src/store/claim.rs)\n\
         local STORED_FIELDS = {{ {} }}\n\
         local F = {{ {} }}\n",
        stored.join(", "),
        positions.join(", ")
    )
}

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
        const OP: &str = "claim";
        let mut conn = self.conn.clone();
        let mut call = self.invoke(&self.scripts.claim);
        let value: Value = call
            .arg(max)
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
            .map_err(StoreError::command(OP))?;
        let parts = reply::array(&value).ok_or_else(|| StoreError::reply(OP, "not an array"))?;
        let [now, next_due, jobs] = parts else {
            return Err(StoreError::reply(OP, "expected 3 parts"));
        };
        let now_ms = reply::int(now).ok_or_else(|| StoreError::reply(OP, "bad clock"))?;
        let next_due_ms = reply::int(next_due).filter(|n| *n >= 0).map(|n| n as u64);
        // (id, packed values) of each job, one after the other
        let pairs = reply::array(jobs).unwrap_or_default();
        if !pairs.len().is_multiple_of(2) {
            return Err(StoreError::reply(
                OP,
                "expected each job's id and values, in pairs",
            ));
        }
        let jobs = pairs
            .chunks_exact(2)
            .map(|job| {
                let [id, values] = job else {
                    return Err(StoreError::reply(OP, "expected a job's id and values"));
                };
                let id = reply::job_id(OP, id)?;
                let Value::BulkString(packed) = values else {
                    return Err(StoreError::reply(
                        OP,
                        format!("job {id}: its values are not one packed string"),
                    ));
                };
                let claimed = reply::Packed::unpack(&CLAIMED_FIELDS, packed).map_err(|detail| {
                    StoreError::reply(OP, format!("job {id}: packed values: {detail}"))
                })?;
                let job = reply::snapshot(OP, id, &claimed)?;
                let prior = claimed
                    .field(fields::COMMIT_ID)
                    .filter(|commit| !commit.is_empty())
                    .map(str::to_owned);
                let begun = claimed
                    .field(fields::BEGUN)
                    .and_then(|ms| ms.parse().ok())
                    .map(Duration::from_millis);
                let queue = claimed
                    .field(fields::QUEUE)
                    .unwrap_or_default()
                    .parse::<Priority>()
                    .map_err(|e| StoreError::reply(OP, format!("job {id}: its queue: {e}")))?;
                Ok(Claim::new(self, job, prior, begun, queue))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Claimed {
            now_ms: now_ms as u64,
            next_due_ms,
            jobs,
        })
    }

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
    fn the_lua_binding_lists_the_stored_fields_and_every_position() {
        let binding = lua_binding();
        let stored: Vec<String> = CLAIMED_FIELDS[..STORED_CLAIMED]
            .iter()
            .map(|name| format!("'{name}'"))
            .collect();
        assert!(
            binding.contains(&format!(
                "local STORED_FIELDS = {{ {} }}\n",
                stored.join(", ")
            )),
            "{binding}"
        );
        for (i, name) in CLAIMED_FIELDS.iter().enumerate() {
            assert!(
                binding.contains(&format!(" {name} = {},", i + 1))
                    || binding.contains(&format!(" {name} = {} }}", i + 1)),
                "{name}: {binding}"
            );
        }
        let mut names = CLAIMED_FIELDS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CLAIMED_FIELDS.len(), "a field named twice");
    }

    #[test]
    fn the_claim_script_reads_only_fields_the_binding_names() {
        let read =
            super::super::scripts::names_read_through(include_str!("../../lua/claim.lua"), "F.");
        for name in &read {
            assert!(
                CLAIMED_FIELDS.contains(&name.as_str()),
                "claim.lua reads F.{name}"
            );
        }
        assert!(!read.is_empty(), "claim.lua reads no field through F");
    }

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
