//! Committing a claimed step: the arguments of `commit.lua` (positional,
//! bound to names by a line generated from [`COMMIT_ARGS`]), and the
//! read-back that settles a commit whose answer was lost.

use std::sync::Arc;

use redis::Value;

use super::connection::Acked;
use super::fields;
use super::{Claim, Store, StoreError, millis, reply};
use crate::{CommitId, JobSnapshot, Priority, ResultRecord, StepError, Transition};

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

/// The arguments `commit.lua` decides on, by name: the script receives the
/// values alone, in this order, and reads `a.<name>` through the binding
/// [`lua_binding`] generates from this list. Positional, not (name, value)
/// pairs: each argument costs Redis some 90 ns per call, on every step.
/// After them come the record's changed fields (see [`RECORD_FIELDS`]).
pub const COMMIT_ARGS: [&str; 12] = [
    "id",
    fields::TOKEN,
    fields::LOGIN,
    fields::COMMIT_ID,
    fields::STATE,
    fields::DUE,
    fields::QUEUE,
    DEADLINE_MOVED,
    fields::ERR_CODE,
    "result_sink",
    "result_data",
    "result_ttl_ms",
];

/// The argument that carries a deadline the transition set, to index in
/// `deadlines`; empty when the deadline is the one claimed (indexed then,
/// or none), so the commit reads no `deadline` off the hash to compare.
const DEADLINE_MOVED: &str = "deadline_moved";

/// The job fields a transition sets. A commit sends, after [`COMMIT_ARGS`],
/// a (name, value) pair for each one whose value differs from the job as
/// claimed, and `commit.lua` writes those as they are: a held job's hash is
/// the claimed snapshot (only its holder writes these fields, and a commit
/// is fenced once the claim is lost), so an unchanged field needs no write.
/// Most steps change a few (`polls`, `last`): each field of the HSET is a
/// search of the ~27-field hash, and each argument a string to copy, on
/// every step. Values are compared as they would be stored, so an absent
/// field that reads as the value written ("" or "0") stays absent.
pub const RECORD_FIELDS: [&str; 13] = [
    fields::REQUEST_ID,
    fields::DEADLINE,
    fields::ATTEMPTS,
    fields::POLLS,
    fields::AUTHS,
    fields::RETRIES,
    fields::ERR_CODE,
    fields::ERR_HTTP,
    fields::ERR_MSG,
    fields::LAST,
    fields::SESSIONS,
    fields::STAGE,
    fields::STAGE_ACCEPTED,
];

/// One commit, ready to send (and to send again, unchanged, after a lost
/// answer): built in one place from the job as claimed, the transition, the
/// commit id and where a succeeded job's payload is.
///
/// Cheap to clone (shared): a commit waiting for its group's call (see
/// `commit_batch.rs`) holds it while its step keeps it for a retry, and a
/// succeeded job's values carry its payload.
#[derive(Clone)]
pub struct CommitParams {
    commit_id: CommitId,
    args: Arc<CommitArgs>,
}

struct CommitArgs {
    /// Values in [`COMMIT_ARGS`] order.
    values: [Vec<u8>; COMMIT_ARGS.len()],
    /// The [`RECORD_FIELDS`] the transition changes, with their new values.
    changed: Vec<(&'static str, Vec<u8>)>,
}

// the values carry a payload and error messages: never printed whole
impl std::fmt::Debug for CommitParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitParams")
            .field("commit_id", &self.commit_id)
            .finish_non_exhaustive()
    }
}

/// The Lua lines that name `commit.lua`'s positional arguments, prepended
/// to it: `args_at(offset, a)`, which sets in table `a` the arguments of
/// the commit whose segment starts after `ARGV[offset]` (`a.id =
/// ARGV[offset + 1]`, `a.token = ARGV[offset + 2]`, ...) and returns it
/// (one table for every commit of a call: a table per commit is garbage
/// Redis' Lua collects), and `COMMIT_ARGC`, their count: the count of
/// changed fields' pairs follows them, then the pairs.
pub(super) fn lua_binding() -> String {
    let fields: String = COMMIT_ARGS
        .iter()
        .enumerate()
        .map(|(i, name)| format!("  a.{name} = ARGV[offset + {}]\n", i + 1))
        .collect();
    format!(
        "-- commit's arguments by name (generated from COMMIT_ARGS in shared/src/store/commit.rs)\n\
         local function args_at(offset, a)\n\
         {fields}\
         \x20 return a\n\
         end\n\
         -- a commit's segment: COMMIT_ARGC values, the count of (field, value) pairs, the pairs\n\
         local COMMIT_ARGC = {}\n",
        COMMIT_ARGS.len()
    )
}

/// A job's [`RECORD_FIELDS`], as the job was claimed or as a transition
/// sets them.
struct Record<'a> {
    request_id: Option<&'a str>,
    deadline_ms: Option<u64>,
    attempts: u32,
    polls: u32,
    auths: u32,
    retries: u32,
    error: Option<&'a StepError>,
    last: Option<&'a str>,
    sessions: u32,
    stage: u8,
    stage_accepted: bool,
}

impl Record<'_> {
    /// The values, in [`RECORD_FIELDS`] order, as `commit.lua` stores them.
    fn stored(&self) -> [Vec<u8>; RECORD_FIELDS.len()] {
        let text = |s: &str| s.as_bytes().to_vec();
        let number = |n: u64| n.to_string().into_bytes();
        let optional = |n: Option<u64>| n.map(number).unwrap_or_default();
        let error = self.error;
        [
            text(self.request_id.unwrap_or_default()),
            optional(self.deadline_ms),
            number(self.attempts.into()),
            number(self.polls.into()),
            number(self.auths.into()),
            number(self.retries.into()),
            text(error.map(|e| e.code.as_str()).unwrap_or_default()),
            optional(error.and_then(|e| e.http_status).map(u64::from)),
            text(error.map(|e| e.message.as_str()).unwrap_or_default()),
            text(self.last.unwrap_or_default()),
            number(self.sessions.into()),
            number(self.stage.into()),
            number(self.stage_accepted.into()),
        ]
    }
}

impl CommitParams {
    /// The arguments that apply `t` to `job` under `commit_id`, recording
    /// `result` (a succeeded job's payload or its location) in the same step;
    /// a job that waits again goes back to the due queue of `queue`, the
    /// one it was claimed from.
    pub fn new(
        job: &JobSnapshot,
        queue: Priority,
        t: &Transition,
        commit_id: CommitId,
        result: Option<&ResultRecord>,
    ) -> Self {
        let text = |s: &str| s.as_bytes().to_vec();
        let number = |n: u64| n.to_string().into_bytes();
        let optional = |n: Option<u64>| n.map(number).unwrap_or_default();
        let error = t.error.as_ref();
        let values = [
            text(&job.id.to_string()),
            text(job.token.as_ref().map_or("", |token| token.as_str())),
            text(&job.login.to_string()),
            text(&commit_id.to_string()),
            text(t.state.as_str()),
            optional(t.due_ms),
            text(queue.as_str()),
            optional(t.deadline_ms.filter(|_| t.deadline_ms != job.deadline_ms)),
            text(error.map(|e| e.code.as_str()).unwrap_or_default()),
            text(result.map_or("", ResultRecord::sink)),
            result.map_or_else(Vec::new, |r| r.data().to_vec()),
            number(result.map_or(0, |r| millis(r.ttl()).max(1))),
        ];
        let was = Record {
            request_id: job.request_id.as_deref(),
            deadline_ms: job.deadline_ms,
            attempts: job.attempts,
            polls: job.polls,
            auths: job.auths,
            retries: job.retries,
            error: job.error.as_ref(),
            last: job.last.as_deref(),
            sessions: job.sessions,
            stage: job.stage,
            stage_accepted: job.stage_accepted,
        }
        .stored();
        let now = Record {
            request_id: t.request_id.as_deref(),
            deadline_ms: t.deadline_ms,
            attempts: t.attempts,
            polls: t.polls,
            auths: t.auths,
            retries: t.retries,
            error,
            last: Some(&t.last),
            sessions: t.sessions,
            stage: t.stage,
            stage_accepted: t.stage_accepted,
        }
        .stored();
        let changed = RECORD_FIELDS
            .iter()
            .zip(was.iter().zip(now))
            .filter(|(_, (was, now))| *was != now)
            .map(|(name, (_, now))| (*name, now))
            .collect();
        CommitParams {
            commit_id,
            args: Arc::new(CommitArgs { values, changed }),
        }
    }

    /// The record fields this commit writes besides those it always writes
    /// (state, `updated`, `commit_id`, the spent token, `claims`).
    pub fn changed_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.args.changed.iter().map(|(name, _)| *name)
    }

    /// The id every retry of this commit carries.
    pub fn commit_id(&self) -> CommitId {
        self.commit_id
    }

    /// Appends this commit's segment of a `commit.lua` call: its values,
    /// the count of changed fields, their (name, value) pairs.
    fn pass_to(&self, call: &mut redis::Cmd) {
        for value in &self.args.values {
            call.arg(value.as_slice());
        }
        call.arg(self.args.changed.len());
        for (name, value) in &self.args.changed {
            call.arg(*name).arg(value.as_slice());
        }
    }

    /// How many bytes of values [`CommitParams::pass_to`] appends (a
    /// succeeded job's payload, with the `redis` sink, is most of it).
    pub(super) fn byte_len(&self) -> usize {
        let values: usize = self.args.values.iter().map(Vec::len).sum();
        let changed: usize = self
            .args
            .changed
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        values + changed
    }

    /// How many arguments [`CommitParams::pass_to`] appends.
    pub(super) fn arg_count(&self) -> usize {
        COMMIT_ARGS.len() + 1 + 2 * self.args.changed.len()
    }
}

impl Claim {
    /// The arguments of a commit of `t` under a fresh commit id; send them
    /// with [`Claim::commit`], again unchanged if the answer is lost.
    pub fn prepare(&self, t: &Transition, result: Option<&ResultRecord>) -> CommitParams {
        let params = CommitParams::new(&self.job, self.queue, t, CommitId::random(), result);
        // before it is sent: a commit applied whose answer never came back
        // (the primary killed right after applying it, a retry fenced by
        // the next claim) is still on its job's chain, and this line is the
        // only link from it to the commit it followed
        tracing::debug!(
            job = %self.job.id,
            commit = %params.commit_id,
            prior = %self.prior_commit.as_deref().unwrap_or("none"),
            "commit prepared"
        );
        params
    }

    /// Applies a prepared commit if this claim still holds (its token and
    /// lease, and the job still belongs to its login). A retry of the same
    /// `params` after a lost answer reads [`CommitOutcome::AlreadyApplied`].
    ///
    /// With `FLINKQ_REDIS_WAIT_REPLICAS`, a commit the replicas did not
    /// confirm in time is an error that reads as unanswered
    /// ([`StoreError::NotReplicated`]): the caller retries it like a commit
    /// whose answer was lost (the retry reads "already applied" and waits
    /// for the replicas again), and never counts it as applied.
    ///
    /// On a store with commit batching (see [`Store::with_commit_batching`])
    /// the commit goes in one call with the others waiting then: an error of
    /// that call (a timeout, a lost connection, replicas short) is this
    /// commit's error, and its retry reads "already applied" the same way.
    pub async fn commit(&self, params: &CommitParams) -> Result<CommitOutcome, StoreError> {
        let (outcome, acked) = match &self.store.batcher {
            Some(batcher) => batcher.commit(params.clone()).await?,
            None => {
                let mut answers = self.store.commit_together(&[params]).await;
                answers.pop().unwrap_or_else(|| {
                    Err(StoreError::reply(COMMIT_OP, "no answer for the commit"))
                })?
            }
        };
        if outcome.is_applied() {
            self.trace_commit(params, outcome, &acked);
        }
        acked.answer(outcome)
    }

    /// One debug line (target `flinkq_shared::store::commit`) per commit the
    /// primary applied: the job, the commit, the commit the job held when
    /// claimed, and whether it was acknowledged. With the `commit prepared`
    /// lines of [`Claim::prepare`] (chained by `prior`: each job's history
    /// of transitions), this is how a test proves no acknowledged one was
    /// lost in a failover.
    fn trace_commit(&self, params: &CommitParams, outcome: CommitOutcome, acked: &Acked) {
        tracing::debug!(
            job = %self.job.id,
            commit = %params.commit_id,
            prior = %self.prior_commit.as_deref().unwrap_or("none"),
            outcome = ?outcome,
            acknowledged = matches!(acked, Acked::Enough),
            "commit applied"
        );
    }

    /// Prepares and commits `t` with no result, in one go.
    pub async fn apply(&self, t: &Transition) -> Result<CommitOutcome, StoreError> {
        self.commit(&self.prepare(t, None)).await
    }

    /// Settles a commit whose answer was lost, once the caller stopped
    /// retrying it: true if it was applied. False is final: the claim's
    /// token is deleted, so the lost commit can no longer apply should it
    /// still reach Redis.
    ///
    /// With `FLINKQ_REDIS_WAIT_REPLICAS`, the answer counts only once the
    /// replicas confirmed it (an "applied" seen on a primary that then fails
    /// over may not be true on the next one): otherwise an unanswered error.
    pub async fn resolve_commit(&self, params: &CommitParams) -> Result<bool, StoreError> {
        const OP: &str = "resolve_commit";
        let mut call = self.store.invoke(&self.store.scripts.resolve_commit);
        call.arg(self.job.id.to_string())
            .arg(self.token.as_str())
            .arg(params.commit_id.to_string());
        let mut pipe = redis::pipe();
        pipe.invoke_script(&call);
        let (replies, acked) = self
            .store
            .write_durably(OP, pipe, &[&self.store.scripts.resolve_commit])
            .await?;
        let applied = replies.first().and_then(reply::int) == Some(1);
        if applied {
            self.trace_commit(params, CommitOutcome::AlreadyApplied, &acked);
        }
        acked.answer(applied)
    }
}

/// The operation name of a commit, in errors and metrics.
const COMMIT_OP: &str = "commit";

/// One commit's answer from a call of `commit.lua`: what it did and whether
/// the replicas confirmed the call, or the error that is its answer.
pub(super) type CommitAnswer = Result<(CommitOutcome, Acked), StoreError>;

impl Store {
    /// Sends `batch` in one call of `commit.lua`, through
    /// [`Store::write_durably`] (so `WAIT` covers every commit of it), and
    /// returns one answer per commit, in order. An error of the call is
    /// every commit's error; a commit the script failed on is its own.
    pub(super) async fn commit_together(&self, batch: &[&CommitParams]) -> Vec<CommitAnswer> {
        let every = |error: StoreError| batch.iter().map(|_| Err(error.clone())).collect();
        let script = &self.scripts.commit;
        let args = batch.iter().map(|params| params.arg_count()).sum();
        let mut call = self.evalsha(script, args);
        for params in batch {
            params.pass_to(&mut call);
        }
        let mut pipe = redis::pipe();
        pipe.add_command(call);
        let (mut replies, acked) = match self.write_durably(COMMIT_OP, pipe, &[script]).await {
            Ok(answer) => answer,
            Err(error) => return every(error),
        };
        let results = match replies.pop() {
            Some(Value::Array(results)) if results.len() == batch.len() => results,
            other => {
                return every(StoreError::reply(
                    COMMIT_OP,
                    format!("expected {} results, got {other:?}", batch.len()),
                ));
            }
        };
        results
            .iter()
            .map(|result| {
                let outcome = match reply::int(result) {
                    Some(1) => CommitOutcome::Applied,
                    Some(2) => CommitOutcome::AlreadyApplied,
                    Some(0) => CommitOutcome::Fenced,
                    _ => {
                        let detail = reply::text(result).unwrap_or_default();
                        return Err(StoreError::reply(
                            COMMIT_OP,
                            format!("commit.lua failed on this commit: {detail}"),
                        ));
                    }
                };
                Ok((outcome, acked.clone()))
            })
            .collect()
    }

    /// Sends `batch` in one call of `commit.lua`, as the commit batcher
    /// does: lets a test put chosen commits (a stale one among good ones, a
    /// retry) in one call.
    #[cfg(feature = "test-kit")]
    pub async fn commit_in_one_call(
        &self,
        batch: &[&CommitParams],
    ) -> Vec<Result<CommitOutcome, StoreError>> {
        self.commit_together(batch)
            .await
            .into_iter()
            .map(|answer| {
                let (outcome, acked) = answer?;
                acked.answer(outcome)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_args_are_named_once_each() {
        let mut names = COMMIT_ARGS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COMMIT_ARGS.len());
    }

    #[test]
    fn the_lua_binding_names_every_commit_arg_by_its_position_in_its_segment() {
        let binding = lua_binding();
        let bound: Vec<(String, usize)> = binding
            .lines()
            .filter_map(|line| line.trim().strip_prefix("a."))
            .map(|pair| {
                let (name, slot) = pair
                    .split_once(" = ARGV[offset + ")
                    .expect("a.name = ARGV[offset + n]");
                let slot = slot.trim().trim_end_matches(']').parse().expect("a slot");
                (name.trim().to_owned(), slot)
            })
            .collect();
        let expected: Vec<(String, usize)> = COMMIT_ARGS
            .iter()
            .enumerate()
            .map(|(i, name)| ((*name).to_owned(), i + 1))
            .collect();
        assert_eq!(bound, expected);
        assert!(
            binding.contains(&format!("local COMMIT_ARGC = {}\n", COMMIT_ARGS.len())),
            "{binding}"
        );
    }

    #[test]
    fn the_commit_script_reads_its_arguments_through_the_binding_only() {
        let script = include_str!("../../lua/commit.lua");
        for line in script
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
        {
            // a segment starts anywhere: a fixed position is the binding's
            for (at, _) in line.match_indices("ARGV[") {
                assert!(
                    !line[at + 5..].starts_with(|c: char| c.is_ascii_digit()),
                    "commit.lua reads ARGV at a fixed position: {line}"
                );
            }
        }
        // every `a.<name>` (a name the binding lacks would read nil, silently)
        let read = super::super::scripts::names_read_through(script, "a.");
        for name in &read {
            assert!(
                COMMIT_ARGS.contains(&name.as_str()),
                "commit.lua reads a.{name}"
            );
        }
        assert!(!read.is_empty(), "commit.lua reads no argument through `a`");
    }

    fn polling_job() -> JobSnapshot {
        JobSnapshot {
            id: crate::JobId::new(),
            login: crate::LoginId::random(),
            product: crate::Product::DEFAULT,
            batch: "b".into(),
            state: crate::JobState::Polling,
            token: Some(crate::ClaimToken::from_stored("t.1")),
            request_id: Some("req-1".into()),
            deadline_ms: Some(2_000_000),
            stage: 0,
            stage_accepted: true,
            attempts: 0,
            polls: 3,
            auths: 1,
            sessions: 1,
            claims: 1,
            retries: 0,
            created_ms: 1,
            started_ms: Some(2),
            updated_ms: 3,
            finished_ms: None,
            error: None,
            last: Some("poll:202".into()),
            due_ms: Some(1_000_000),
        }
    }

    #[test]
    fn a_commit_writes_only_the_record_fields_its_transition_changes() {
        let job = polling_job();
        let tick = crate::Tick {
            now_ms: 1_000_000,
            jitter: 0.5,
        };
        let snooze = crate::transition(
            &job,
            crate::Outcome::Pending,
            tick,
            &crate::Policy::default(),
        );
        let params = CommitParams::new(&job, Priority::Normal, &snooze, CommitId::random(), None);
        assert_eq!(
            params.changed_fields().collect::<Vec<_>>(),
            vec![fields::POLLS],
            "a snooze counts a poll; its label is the same"
        );
        let moved = |params: &CommitParams| {
            let at = COMMIT_ARGS.iter().position(|name| *name == DEADLINE_MOVED);
            String::from_utf8(params.args.values[at.expect("an argument")].clone()).expect("text")
        };
        assert_eq!(
            moved(&params),
            "",
            "the claimed deadline is indexed already"
        );
        // every record field a transition may change is sent when it does
        let mut all = snooze.clone();
        all.request_id = None;
        all.deadline_ms = Some(9);
        all.attempts = 9;
        all.polls = 9;
        all.auths = 9;
        all.retries = 9;
        all.error = Some(StepError {
            code: "E".into(),
            http_status: Some(500),
            message: "m".into(),
        });
        all.last = "x".into();
        all.sessions = 9;
        all.stage = 9;
        all.stage_accepted = false;
        let params = CommitParams::new(&job, Priority::Normal, &all, CommitId::random(), None);
        assert_eq!(
            params.changed_fields().collect::<Vec<_>>(),
            RECORD_FIELDS.to_vec()
        );
        assert_eq!(moved(&params), "9", "a moved deadline is indexed anew");
        assert_eq!(
            params.arg_count(),
            COMMIT_ARGS.len() + 1 + 2 * RECORD_FIELDS.len()
        );
    }
}
