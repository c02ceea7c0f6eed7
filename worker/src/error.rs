//! Why the worker could not start or run.

use flinkq_shared::store::StoreError;

use crate::results::ResultWriteError;

/// A worker-level failure. Step-level problems never surface here: they end
/// in a committed transition or an expiring lease.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Redis could not be reached at start, or the URL is wrong.
    #[error(transparent)]
    Redis(#[from] StoreError),
    /// The results directory cannot be created.
    #[error(transparent)]
    Results(#[from] ResultWriteError),
    /// The Flinks HTTP client could not be built (TLS, the auth key).
    #[error("cannot build the Flinks HTTP client: {0}")]
    Http(#[from] crate::flinks::TransportBuildError),
    /// The batch webhook's HTTP client could not be built.
    #[error("cannot build the batch webhook's HTTP client (FLINKQ_BATCH_WEBHOOK): {0}")]
    WebhookClient(reqwest::Error),
    /// The auth key (or its file) cannot be used.
    #[error(
        "the Flinks auth key (FLINKQ_AUTH_KEY or FLINKQ_AUTH_KEY_FILE) cannot be used: {reason}"
    )]
    AuthKey {
        /// Why, and what to check.
        reason: String,
    },
    /// A flag's value is refused (zero, absurd, or inconsistent with another).
    #[error("invalid {flag}: {reason}")]
    BadConfig {
        /// The flag and its environment variable.
        flag: &'static str,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The results directory cannot be written at start.
    #[error(
        "the results directory {path} is not writable: {reason}. Fix FLINKQ_RESULTS_DIR (it must be a writable directory), or use FLINKQ_RESULTS=redis"
    )]
    ResultsNotWritable {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The apalis monitor ended with an error.
    #[error("worker runtime failed: {0}")]
    Runtime(String),
}
