//! The job record: ids, states and the snapshot a worker claims.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::LoginId;

/// A job's id: a counter allocated by Redis at enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
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
    /// Has a session: /Investments is next.
    Polling,
    /// Investments payload stored.
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
    /// The name stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
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
    /// The batch it was enqueued in.
    pub batch: String,
    /// Its state.
    pub state: JobState,
    /// Fencing token: bumped by every claim, reap and release.
    pub seq: u64,
    /// The Flinks session (`RequestId`) while polling.
    pub request_id: Option<String>,
    /// When polling must stop (ms since the Unix epoch, Redis clock); set
    /// before the first /Investments call and never moved.
    pub deadline_ms: Option<u64>,
    /// Consecutive transient failures of the current step.
    pub attempts: u32,
    /// /Investments calls made.
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
