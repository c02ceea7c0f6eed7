//! What happens in the worker, as events. The step executor, the Flinks
//! client and the Redis loops emit these; they know nothing of Prometheus
//! (the mapping lives in [`crate::metrics`]).

use std::fmt::Debug;
use std::time::Duration;

use flinkq_shared::product::{Call, OnPending};
use flinkq_shared::store::{RedisErrorKind, StoreError};
use flinkq_shared::{JobState, Product, Step, TransitionKind};

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
        /// The job's product.
        product: Product,
        /// Which call.
        endpoint: Endpoint,
        /// HTTP status; `None` when no answer came (timeout, reset...).
        status: Option<u16>,
        /// FlinksCode, or the network failure code (`TIMEOUT`, `CONNECT`...).
        code: Option<&'a str>,
        /// How long the call took.
        latency: Duration,
    },
    /// A step's transition was committed.
    StepCommitted {
        /// The job's product.
        product: Product,
        /// Which step (or none: ended at claim).
        step: StepLabel,
        /// What kind of change.
        kind: TransitionKind,
        /// The job's new state.
        state: JobState,
        /// For a finished job: enqueue → now.
        job_age: Option<Duration>,
    },
    /// A step ended without a commit.
    StepAbandoned {
        /// The job's product.
        product: Product,
        /// Why.
        reason: AbandonReason,
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
        op: RedisOp,
        /// What kind of failure (READONLY, a cluster redirect, a timeout...).
        kind: RedisErrorKind,
    },
}

impl Event<'_> {
    /// `op` failed with `error`.
    pub fn redis_error(op: RedisOp, error: &StoreError) -> Event<'static> {
        Event::RedisError {
            op,
            kind: error.kind(),
        }
    }
}

/// Declares a label enum: its variants, their label spellings, `ALL` (so
/// the metrics register every series up front) and `as_str()`.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $label:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order (the metric's label values).
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The metric label.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// A Redis operation that can fail (the `op` label of
    /// `flinkq_redis_errors_total`).
    RedisOp {
        /// Claiming due steps.
        Claim => "claim",
        /// Renewing a claim right before the Flinks call.
        Begin => "begin",
        /// Committing a transition.
        Commit => "commit",
        /// Reading back a commit whose answer was lost.
        ResolveCommit => "resolve_commit",
        /// The heartbeat renewing held leases.
        Extend => "extend",
        /// The reaper giving back expired leases.
        Reap => "reap",
        /// The retention purge of finished jobs.
        Purge => "purge",
        /// Reading the queue gauges.
        Stats => "stats",
        /// The batch webhook's consumer group.
        Webhook => "webhook",
        /// The readiness probe asking whether the primary takes writes.
        Probe => "probe",
    }
}

label_enum! {
    /// Why a step ended without a commit (the `outcome` label of
    /// `flinkq_steps_total{step="any"}`).
    AbandonReason {
        /// Another claim owns the job now: the commit was refused.
        Fenced => "fenced",
        /// The claim was gone (or unconfirmed) before the call.
        Lost => "lost",
        /// The commit failed and was not applied, or cannot be told.
        CommitFailed => "commit_failed",
    }
}

label_enum! {
    /// The step that committed (the `step` label of `flinkq_steps_total`).
    StepLabel {
        /// An Authorize call.
        Authorize => "authorize",
        /// A data call of the job's product (any stage).
        Poll => "poll",
        /// No call: the job ended at claim (deadline, poison pill).
        Claim => "claim",
    }
}

/// A Flinks call (the `endpoint` label of the request metrics): Authorize,
/// or a call's name in the product table, so the label's values are
/// bounded by the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint(&'static str);

impl Endpoint {
    /// `POST …/BankingServices/Authorize`.
    pub const AUTHORIZE: Endpoint = Endpoint(crate::flinks::endpoints::AUTHORIZE);

    /// A call of the product table.
    pub fn of(call: &'static Call) -> Endpoint {
        Endpoint(call.name)
    }

    /// Every call `product` may make: Authorize, then each stage's calls.
    pub fn of_product(product: Product) -> Vec<Endpoint> {
        let mut all = vec![Endpoint::AUTHORIZE];
        for stage in product.stages() {
            all.push(Endpoint::of(&stage.first));
            if let OnPending::Then(poll) = &stage.on_pending {
                all.push(Endpoint::of(poll));
            }
        }
        all.dedup();
        all
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl StepLabel {
    /// The label of the call `step` makes.
    pub fn of(step: &Step) -> StepLabel {
        match step {
            Step::Authorize => StepLabel::Authorize,
            Step::Poll { .. } => StepLabel::Poll,
        }
    }
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
