//! The CLI's errors, each with what failed, what to do, and an exit code.

use flinkq_shared::Product;
use flinkq_shared::store::StoreError;

/// `sysexits.h` codes, so scripts can tell failures apart.
pub mod exit {
    /// Bad usage (no input, unknown flag).
    pub const USAGE: i32 = 64;
    /// Bad input data (invalid loginIds).
    pub const DATA: i32 = 65;
    /// An input file cannot be opened.
    pub const NO_INPUT: i32 = 66;
    /// Redis is unreachable.
    pub const UNAVAILABLE: i32 = 69;
    /// Something that was asked for does not exist.
    pub const NOT_FOUND: i32 = 1;
    /// A watched batch finished with failed, timed-out or cancelled jobs.
    pub const SOME_FAILED: i32 = 3;
}

/// A CLI failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Invalid loginIds in the input; nothing was enqueued.
    #[error(
        "{invalid} invalid loginId(s) (listed above); nothing was done. Fix them, or pass --skip-invalid to go on with the valid ones"
    )]
    InvalidInput {
        /// How many.
        invalid: u64,
    },
    /// Redis stopped answering part-way through an enqueue, and kept silent
    /// for the whole retry time.
    #[error(
        "enqueue of batch {batch} interrupted: {source}. Confirmed in Redis: {} of {} logins (enqueued {}, already active {}, already in batch {}); unconfirmed: {} (Redis never answered their round trip: some may be in); not sent: {}. Re-run the same command with --batch {batch} once Redis is back: logins already in the batch are skipped",
        partial.confirmed, partial.total, partial.enqueued, partial.already_active, partial.already_in_batch, partial.unconfirmed, partial.not_sent
    )]
    EnqueueInterrupted {
        /// The batch.
        batch: String,
        /// What is known.
        partial: Box<crate::enqueue::PartialEnqueue>,
        /// Why.
        source: StoreError,
    },
    /// The temporary spool of validated loginIds failed.
    #[error(
        "cannot spool the validated loginIds to a temporary file: {source}; check TMPDIR has space"
    )]
    Spool {
        /// Why.
        source: std::io::Error,
    },
    /// Nothing to enqueue.
    #[error("no loginIds given: pass them as arguments or with --file PATH (--file - reads stdin)")]
    NoInput,
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A single loginId argument is malformed.
    #[error("{0}")]
    BadLoginId(flinkq_shared::LoginIdError),
    /// The batch does not exist.
    #[error("no batch named {0:?} in this namespace (check --namespace / FLINKQ_NAMESPACE)")]
    UnknownBatch(String),
    /// The login has no job of the product.
    #[error(
        "no job for loginId {login} and product {product} in this namespace (check --namespace / FLINKQ_NAMESPACE, and --product / FLINKQ_PRODUCT)"
    )]
    NoJob {
        /// The login.
        login: String,
        /// The product asked for.
        product: Product,
    },
    /// The login's newest job of the product is not dead.
    #[error("loginId {login} has no dead {product} job: its newest {product} job is {state}")]
    NotDead {
        /// The login.
        login: String,
        /// The product asked for.
        product: Product,
        /// Its newest job's state.
        state: flinkq_shared::JobState,
    },
    /// The login has jobs of the product but no stored result.
    #[error("no stored {product} result for loginId {login}: {why}")]
    NoResult {
        /// The login.
        login: String,
        /// The product asked for.
        product: Product,
        /// Why (its newest job's state and error).
        why: String,
    },
    /// The result file a worker recorded cannot be read here.
    #[error(
        "cannot read the result file {path}: {source}. The files sink writes on the worker's results volume (FLINKQ_RESULTS_DIR): run this where it is mounted, or use FLINKQ_RESULTS=redis"
    )]
    ResultFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A payload stored in Redis does not decompress.
    #[error(
        "the payload in {key} is not valid gzip ({source}); it was overwritten by something other than flinkq, re-run the login to store it again"
    )]
    CorruptResult {
        /// The key.
        key: String,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing to cancel.
    #[error(
        "loginId {0} has no unfinished job of product {1} to cancel (check --product / FLINKQ_PRODUCT)"
    )]
    NothingToCancel(String, Product),
    /// Contradictory arguments.
    #[error("{0}")]
    Usage(&'static str),
    /// A watched batch finished, but not every job succeeded.
    #[error(
        "batch {batch} finished: {failed} failed, {timed_out} timed out, {cancelled} cancelled (see `flinkq dead list`)"
    )]
    BatchNotAllSucceeded {
        /// The batch.
        batch: String,
        /// Failed jobs.
        failed: u64,
        /// Timed-out jobs.
        timed_out: u64,
        /// Cancelled jobs.
        cancelled: u64,
    },
    /// The schedule cannot run (bad cron expression or time zone).
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
    /// A signal handler cannot be installed.
    #[error(transparent)]
    Signal(#[from] flinkq_shared::shutdown::SignalError),
    /// `flinkq serve` cannot start or stopped.
    #[error(transparent)]
    Serve(Box<crate::serve::error::ServeError>),
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::InvalidInput { .. } => exit::DATA,
            CliError::NoInput
            | CliError::BadLoginId(_)
            | CliError::Usage(_)
            | CliError::Schedule(_) => exit::USAGE,
            CliError::Signal(_) => 71,
            CliError::Read { .. } => exit::NO_INPUT,
            CliError::UnknownBatch(_)
            | CliError::NoJob { .. }
            | CliError::NotDead { .. }
            | CliError::NothingToCancel(..)
            | CliError::NoResult { .. } => exit::NOT_FOUND,
            CliError::ResultFile { .. } => exit::NO_INPUT,
            CliError::Spool { .. } => 73,
            CliError::CorruptResult { .. } | CliError::Store(StoreError::ForeignResult { .. }) => {
                exit::DATA
            }
            CliError::Store(StoreError::Unreachable { .. } | StoreError::BadUrl { .. }) => {
                exit::UNAVAILABLE
            }
            CliError::Store(_) | CliError::EnqueueInterrupted { .. } => exit::UNAVAILABLE,
            CliError::Output(_) => 74,
            CliError::BatchNotAllSucceeded { .. } => exit::SOME_FAILED,
            CliError::Serve(error) => error.exit_code(),
        }
    }
}

impl From<crate::serve::error::ServeError> for CliError {
    fn from(error: crate::serve::error::ServeError) -> Self {
        CliError::Serve(Box::new(error))
    }
}
