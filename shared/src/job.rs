//! The job record: ids, states and the snapshot a worker claims.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

use crate::{LoginId, Product};

/// A job's id: a UUIDv7 chosen by the enqueuer. Unlike a Redis counter it
/// never repeats when Redis loses data (FLUSHALL, a restart without
/// persistence, a failover that drops writes), so a step still in flight
/// for an old job can never name a new job of another login. Time-ordered,
/// so ids sort roughly by enqueue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh id (UUIDv7: 48 bits of milliseconds, 74 random bits).
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A job id that is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {0:?}: expected a UUID such as 0190c5e2-8a4b-7c3d-9e1f-2a3b4c5d6e7f")]
pub struct BadJobId(pub String);

impl FromStr for JobId {
    type Err = BadJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s)
            .map(JobId)
            .map_err(|_| BadJobId(s.to_owned()))
    }
}

/// The fencing token of one claim: random, chosen by the claimer (one
/// random 128-bit base per claim call, plus the job's index in it), and
/// stored in the job hash as `token`. Reap, release, cancel and dead-letter
/// retry delete it, so a stale holder never matches again; being random, it
/// cannot repeat after Redis loses data the way a counter restarts at 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A fresh random claim base: `<32 hex digits>`; the claim script appends
    /// `.<index>` for each job it claims.
    pub fn random_base() -> String {
        format!("{:032x}", rand::random::<u128>())
    }

    /// A token as read back from the job hash.
    pub fn from_stored(token: impl Into<String>) -> Self {
        ClaimToken(token.into())
    }

    /// The token as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClaimToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names one commit attempt of a step (random 128 bits), stored in the job
/// hash as `commit_id` when applied. A retry of a commit whose answer was
/// lost (a timeout, a cut connection) carries the same id, so the store can
/// tell "already applied" from "fenced" and never applies it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitId(u128);

impl CommitId {
    /// A fresh random id.
    pub fn random() -> Self {
        CommitId(rand::random())
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Where a job is in its life. See `docs/state_machine.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Enqueued, never run.
    Queued,
    /// Needs a session: Authorize is next (first time, after a transient
    /// Authorize failure, or after the session was lost).
    Authorizing,
    /// Has a session: the product's data calls are next.
    Polling,
    /// The product's payload stored.
    Succeeded,
    /// Stopped for good: the user must act, or the request was bad.
    Failed,
    /// Still pending when the polling deadline came.
    TimedOut,
    /// Cancelled by an operator.
    Cancelled,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Authorizing,
        JobState::Polling,
        JobState::Succeeded,
        JobState::Failed,
        JobState::TimedOut,
        JobState::Cancelled,
    ];

    /// The name stored in Redis and printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Authorizing => "authorizing",
            JobState::Polling => "polling",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True once the job can never run again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::TimedOut | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored state name that flinkq does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Claim order: high-priority jobs are claimed before normal ones, normal
/// before low, whatever their backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Urgent: claimed first.
    High,
    /// The default.
    #[default]
    Normal,
    /// Bulk refreshes: claimed when nothing else is due.
    Low,
}

impl Priority {
    /// Every priority, in claim order.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The name stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// A priority name that flinkq does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority {0:?}")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|priority| priority.as_str() == s)
            .ok_or_else(|| UnknownPriority(s.to_owned()))
    }
}

/// What went wrong in a step, as Flinks (or the network) said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepError {
    /// FlinksCode, or a flinkq code such as `TIMEOUT`, `CONNECT`, `BAD_BODY`.
    pub code: String,
    /// HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// Human-readable message.
    pub message: String,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.http_status {
            Some(status) => write!(f, "{} (HTTP {status}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

/// One job as stored in Redis, read at claim time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSnapshot {
    /// The job's id.
    pub id: JobId,
    /// The login it fetches.
    pub login: LoginId,
    /// What it fetches.
    pub product: Product,
    /// The batch it was enqueued in.
    pub batch: String,
    /// Its state.
    pub state: JobState,
    /// Fencing token of the claim this snapshot was read under; `None` when
    /// no claim holds the job (reaped, released, cancelled, committed).
    pub token: Option<ClaimToken>,
    /// The Flinks session (`RequestId`) while polling.
    pub request_id: Option<String>,
    /// When polling must stop (ms since the Unix epoch, Redis clock); set
    /// before the first data call and never moved.
    pub deadline_ms: Option<u64>,
    /// The product's data stage the job is at (0 until a stage answered
    /// 200; back to 0 with a new session).
    pub stage: u8,
    /// The current stage's first call answered 202: the next call is its
    /// poll form (e.g. `GET …Async/{RequestId}`). Reset with the stage.
    pub stage_accepted: bool,
    /// Consecutive transient failures of the current step.
    pub attempts: u32,
    /// Data calls made (every stage).
    pub polls: u32,
    /// Successful Authorize calls, over the job's whole life.
    pub auths: u32,
    /// Sessions obtained in the current run (reset by `flinkq dead retry`);
    /// limited by [`crate::Policy::max_sessions`].
    pub sessions: u32,
    /// Claims since the last applied commit: each claim adds one, a commit
    /// resets it, a release at shutdown gives it back. Above
    /// [`crate::Policy::max_claims`] the job is a poison pill.
    pub claims: u32,
    /// Transient failures retried, in all.
    pub retries: u32,
    /// Enqueue time (ms).
    pub created_ms: u64,
    /// First claim (ms).
    pub started_ms: Option<u64>,
    /// Last change (ms).
    pub updated_ms: u64,
    /// Terminal time (ms).
    pub finished_ms: Option<u64>,
    /// The last error, kept when the job fails or times out.
    pub error: Option<StepError>,
    /// A short label of the last step's outcome, e.g. `poll:202`.
    pub last: Option<String>,
    /// When the claimed step was due (ms); only set on claimed snapshots.
    pub due_ms: Option<u64>,
}

impl JobSnapshot {
    /// Names this run of the job: its id and its first claim. A dead retry
    /// keeps the id but starts a new run (its first claim is reset), so
    /// something an attempt of an earlier run left behind — a staged result
    /// file — is never taken for this run's.
    pub fn run_key(&self) -> String {
        format!("{}-{}", self.id, self.started_ms.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_hyphenated_uuids_that_round_trip() {
        let id = JobId::new();
        let shown = id.to_string();
        assert_eq!(shown.len(), 36, "{shown}");
        assert_eq!(shown.parse::<JobId>(), Ok(id));
        assert_eq!(id.0.get_version_num(), 7);
        assert_eq!(
            serde_json::to_value(id).expect("json"),
            serde_json::Value::String(shown)
        );
    }

    #[test]
    fn a_retried_run_of_a_job_has_a_key_of_its_own() {
        let first = JobSnapshot {
            id: JobId::new(),
            login: LoginId::random(),
            product: Product::DEFAULT,
            batch: "b".into(),
            state: JobState::Polling,
            token: None,
            request_id: None,
            deadline_ms: None,
            stage: 0,
            stage_accepted: false,
            attempts: 0,
            polls: 0,
            auths: 0,
            sessions: 0,
            claims: 0,
            retries: 0,
            created_ms: 1,
            started_ms: Some(10),
            updated_ms: 10,
            finished_ms: None,
            error: None,
            last: None,
            due_ms: None,
        };
        let retried = JobSnapshot {
            started_ms: Some(20),
            ..first.clone()
        };
        assert_eq!(first.run_key(), first.clone().run_key());
        assert_ne!(first.run_key(), retried.run_key());
        assert!(first.run_key().starts_with(&first.id.to_string()));
    }

    #[test]
    fn counter_ids_of_older_versions_are_refused() {
        let error = "42".parse::<JobId>().expect_err("not a uuid");
        assert!(error.to_string().contains("\"42\""), "{error}");
    }

    #[test]
    fn claim_bases_and_commit_ids_are_random_128_bit_hex() {
        let (a, b) = (ClaimToken::random_base(), ClaimToken::random_base());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_ne!(CommitId::random(), CommitId::random());
        assert_eq!(CommitId::random().to_string().len(), 32);
    }
}
