//! flinkq's shared core: the domain types, the pure state machine, the retry
//! policy and the Redis store, used by both the worker and the operator CLI.
//!
//! # Layout
//!
//! - [`login_id`]: `LoginId`, a validated UUID.
//! - [`job`]: `JobId` (UUIDv7), `ClaimToken`, `CommitId`, `JobState`, `JobSnapshot`, `StepError`.
//! - [`classify`]: `Classification`, what a Flinks answer means, by FlinksCode first, then HTTP status.
//! - [`local_code`]: `LocalCode`, the error codes flinkq gives a job itself (timeouts, bad bodies, bounds).
//! - [`product`]: the Flinks data products as data, one file each, and their table.
//! - [`policy`]: poll interval, polling deadline and retry backoff.
//! - [`transition`]: the pure state machine, `plan` and `transition`.
//! - [`store`]: the Redis key schema and the atomic Lua scripts.
//! - [`result_record`]: where a job's payload is stored, and its gzip encoding.
//! - [`secret`]: `Secret`, a string never shown in logs or `Debug`.
//! - [`redis_args`]: the Redis and namespace flags both binaries share.
//! - [`instance`]: this process's name among its replicas.
//! - [`shutdown`]: the shutdown signal (first SIGTERM or SIGINT) of both binaries.
//! - [`telemetry`]: tracing setup (human or JSON lines).

pub mod byte_size;
pub mod classify;
pub mod instance;
pub mod job;
pub mod local_code;
pub mod login_id;
pub mod policy;
pub mod product;
pub mod redis_args;
pub mod result_record;
pub mod secret;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod transition;

pub use classify::{Classification, classify, known_code};
pub use job::{
    BadJobId, ClaimToken, CommitId, JobId, JobSnapshot, JobState, Priority, StepError, UnknownState,
};
pub use local_code::LocalCode;
pub use login_id::{LoginId, LoginIdError};
pub use policy::Policy;
pub use product::{Product, ProductSpec, UnknownProduct};
pub use result_record::{ResultPlace, ResultRecord, StoredResult};
pub use transition::{
    Outcome, Plan, Step, Tick, Transition, TransitionKind, bound_ms, plan, transition,
};
