//! Committing a claimed step: the arguments of `commit.lua` (positional,
//! bound to names by a line generated from [`COMMIT_ARGS`]), and the
//! read-back that settles a commit whose answer was lost.

use super::connection::Acked;
use super::fields;
use super::{Claim, StoreError, millis, reply};
use crate::{CommitId, JobSnapshot, ResultRecord, Transition};

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

/// Every argument `commit.lua` reads, by name: the script receives the
/// values alone, in this order, and reads `a.<name>` through the binding
/// [`lua_binding`] generates from this list. Positional, not (name, value)
/// pairs: each argument costs Redis some 90 ns per call, on every step.
pub const COMMIT_ARGS: [&str; 22] = [
    "id",
    fields::TOKEN,
    fields::LOGIN,
    fields::COMMIT_ID,
    fields::STATE,
    fields::DUE,
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
    "result_sink",
    "result_data",
    "result_ttl_ms",
    fields::SESSIONS,
    fields::STAGE,
    fields::STAGE_ACCEPTED,
];

/// One commit, ready to send (and to send again, unchanged, after a lost
/// answer): built in one place from the job as claimed, the transition, the
/// commit id and where a succeeded job's payload is.
#[derive(Clone)]
pub struct CommitParams {
    commit_id: CommitId,
    /// Values in [`COMMIT_ARGS`] order.
    values: [Vec<u8>; COMMIT_ARGS.len()],
}

// the values carry a payload and error messages: never printed whole
impl std::fmt::Debug for CommitParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitParams")
            .field("commit_id", &self.commit_id)
            .finish_non_exhaustive()
    }
}

/// The Lua line that names `commit.lua`'s positional arguments, prepended
/// to it: `local a = { id = ARGV[1], token = ARGV[2], ... }`.
pub(super) fn lua_binding() -> String {
    let fields: Vec<String> = COMMIT_ARGS
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} = ARGV[{}]", i + 1))
        .collect();
    format!(
        "-- commit's arguments by name (generated from COMMIT_ARGS in shared/src/store/commit.rs)\nlocal a = {{ {} }}\n",
        fields.join(", ")
    )
}

impl CommitParams {
    /// The arguments that apply `t` to `job` under `commit_id`, recording
    /// `result` (a succeeded job's payload or its location) in the same step.
    pub fn new(
        job: &JobSnapshot,
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
            text(t.request_id.as_deref().unwrap_or_default()),
            optional(t.deadline_ms),
            number(t.attempts.into()),
            number(t.polls.into()),
            number(t.auths.into()),
            number(t.retries.into()),
            text(error.map(|e| e.code.as_str()).unwrap_or_default()),
            optional(error.and_then(|e| e.http_status).map(u64::from)),
            text(error.map(|e| e.message.as_str()).unwrap_or_default()),
            text(&t.last),
            text(result.map_or("", ResultRecord::sink)),
            result.map_or_else(Vec::new, |r| r.data().to_vec()),
            number(result.map_or(0, |r| millis(r.ttl()).max(1))),
            number(t.sessions.into()),
            number(t.stage.into()),
            number(t.stage_accepted.into()),
        ];
        CommitParams { commit_id, values }
    }

    /// The id every retry of this commit carries.
    pub fn commit_id(&self) -> CommitId {
        self.commit_id
    }

    fn pass_to(&self, call: &mut redis::Cmd) {
        for value in &self.values {
            call.arg(value.as_slice());
        }
    }
}

impl Claim {
    /// The arguments of a commit of `t` under a fresh commit id; send them
    /// with [`Claim::commit`], again unchanged if the answer is lost.
    pub fn prepare(&self, t: &Transition, result: Option<&ResultRecord>) -> CommitParams {
        let params = CommitParams::new(&self.job, t, CommitId::random(), result);
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
    pub async fn commit(&self, params: &CommitParams) -> Result<CommitOutcome, StoreError> {
        const OP: &str = "commit";
        let mut call = self
            .store
            .evalsha(&self.store.scripts.commit, COMMIT_ARGS.len());
        params.pass_to(&mut call);
        let mut pipe = redis::pipe();
        pipe.add_command(call);
        let (replies, acked) = self
            .store
            .write_durably(OP, pipe, &[&self.store.scripts.commit])
            .await?;
        let outcome = match replies.first().and_then(reply::int) {
            Some(1) => CommitOutcome::Applied,
            Some(2) => CommitOutcome::AlreadyApplied,
            Some(_) => CommitOutcome::Fenced,
            None => return Err(StoreError::reply(OP, format!("not a number: {replies:?}"))),
        };
        if outcome.is_applied() {
            self.trace_commit(params, outcome, &acked);
        }
        match acked {
            Acked::Enough => Ok(outcome),
            Acked::Short(error) => Err(error),
        }
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
        match acked {
            Acked::Enough => Ok(applied),
            Acked::Short(error) => Err(error),
        }
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
    fn the_lua_binding_names_every_commit_arg_by_its_position() {
        let binding = lua_binding();
        let line = binding
            .lines()
            .find(|line| line.starts_with("local a = {"))
            .expect("the binding line");
        let bound: Vec<(String, usize)> = line
            .trim_start_matches("local a = {")
            .trim_end_matches('}')
            .split(',')
            .map(|pair| {
                let (name, slot) = pair.split_once(" = ARGV[").expect("name = ARGV[n]");
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
    }

    #[test]
    fn the_commit_script_reads_its_arguments_through_the_binding_only() {
        let script = include_str!("../../lua/commit.lua");
        let code = script
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default());
        let mut read = 0;
        for line in code {
            assert!(
                !line.contains("ARGV"),
                "commit.lua reads ARGV itself: {line}"
            );
            // every `a.<name>` (a name the binding lacks would read nil, silently)
            let bytes = line.as_bytes();
            for (at, _) in line.match_indices("a.") {
                let word_start =
                    at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
                if !word_start {
                    continue;
                }
                let name: String = line[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    COMMIT_ARGS.contains(&name.as_str()),
                    "commit.lua reads a.{name}"
                );
                read += 1;
            }
        }
        assert!(read > 0, "commit.lua reads no argument through `a`");
    }
}
