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

/// Where events go.
pub trait EventSink: Send + Sync + Debug {
    /// Records one event.
    fn emit(&self, event: Event<'_>);
}
