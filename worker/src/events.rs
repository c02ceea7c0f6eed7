//! What happens in the worker, as events. The step executor, the Flinks
//! client and the Redis loops emit these; they know nothing of Prometheus
//! (the mapping lives in [`crate::metrics`]).

use std::fmt::Debug;
use std::time::Duration;

use flinkq_shared::{JobState, TransitionKind};

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A poll step started this long after it was due.
    PollStarted {
        /// Actual start − due time.
        lateness: Duration,
    },
    /// A call to Flinks came back (or failed on the network).
    FlinksCall {
        /// `authorize` or `investments`.
        endpoint: &'static str,
        /// HTTP status; `None` when no answer came (timeout, reset...).
        status: Option<u16>,
        /// FlinksCode, or the network failure code (`TIMEOUT`, `CONNECT`...).
        code: Option<&'a str>,
        /// How long the call took.
        latency: Duration,
    },
    /// A step's transition was committed.
    StepCommitted {
        /// `authorize`, `poll`, or `claim` (no call made).
        step: &'static str,
        /// What kind of change.
        kind: TransitionKind,
        /// The job's new state.
        state: JobState,
        /// For a finished job: enqueue → now.
        job_age: Option<Duration>,
    },
    /// A step ended without a commit.
    StepAbandoned {
        /// `fenced`, `lost`, or `commit_failed`.
        reason: &'static str,
    },
    /// A commit whose answer was lost (a Redis timeout, a cut connection)
    /// was settled by a retry or a read-back.
    CommitAfterLostAnswer {
        /// What the store said.
        outcome: LostAnswer,
    },
    /// Index entries dropped by one reap pass because their job hash is
    /// gone (evicted or deleted).
    OrphansDropped {
        /// How many.
        count: u64,
    },
    /// Jobs timed out by the reaper (no worker held them).
    JobsTimedOutByReaper {
        /// How many.
        count: u64,
    },
    /// A POST of a batch completion to the batch webhook came back.
    WebhookDelivery {
        /// Accepted (2xx), or not (error, timeout, other status).
        delivered: bool,
    },
    /// A Redis call failed.
    RedisError {
        /// Which operation.
        op: &'static str,
    },
}

/// How a commit whose answer was lost turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// It was applied: the step is done, it counts as committed.
    Applied,
    /// It was not applied, and can no longer be (its claim was spent): the
    /// step runs again after its lease.
    NotApplied,
    /// Redis did not answer the read-back either: if the commit was not
    /// applied, the step runs again after its lease.
    Unknown,
}

impl LostAnswer {
    /// Every outcome (the metric's label values).
    pub const ALL: [LostAnswer; 3] = [
        LostAnswer::Applied,
        LostAnswer::NotApplied,
        LostAnswer::Unknown,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LostAnswer::Applied => "applied",
            LostAnswer::NotApplied => "not_applied",
            LostAnswer::Unknown => "unknown",
        }
    }
}

/// Where events go.
pub trait EventSink: Send + Sync + Debug {
    /// Records one event.
    fn emit(&self, event: Event<'_>);
}
