//! Field names of the job hash (`job:<id>`), the one list Rust reads them
//! by. The Lua scripts write the same names; `commit.lua` receives the ones
//! a commit sets by name from [`super::CommitParams`].

pub const LOGIN: &str = "login";
/// The product's name; absent on jobs stored before products existed
/// (investments).
pub const PRODUCT: &str = "product";
pub const BATCH: &str = "batch";
pub const STATE: &str = "state";
/// The fencing token of the claim holding the job.
pub const TOKEN: &str = "token";
pub const REQUEST_ID: &str = "request_id";
pub const DEADLINE: &str = "deadline";
/// The product's data stage the job is at.
pub const STAGE: &str = "stage";
/// `1` once the stage's first call answered 202.
pub const STAGE_ACCEPTED: &str = "stage_accepted";
pub const ATTEMPTS: &str = "attempts";
pub const POLLS: &str = "polls";
pub const AUTHS: &str = "auths";
pub const SESSIONS: &str = "sessions";
/// Claims since the last applied commit (poison-pill detection).
pub const CLAIMS: &str = "claims";
pub const RETRIES: &str = "retries";
pub const CREATED: &str = "created";
pub const STARTED: &str = "started";
pub const UPDATED: &str = "updated";
pub const FINISHED: &str = "finished";
pub const ERR_CODE: &str = "err_code";
pub const ERR_HTTP: &str = "err_http";
pub const ERR_MSG: &str = "err_msg";
pub const LAST: &str = "last";
/// Not stored: `claim.lua` adds the job's due time to the claimed fields.
pub const DUE: &str = "due";
/// Not stored: `claim.lua` adds it to a claimed job's fields when the claim
/// also began the step (recorded its `not_before`): the spacing it used, ms.
pub const BEGUN: &str = "begun";
/// Not stored: `claim.lua` adds the priority of the due queue it claimed
/// the job from (`high`, `normal`, `low`), the queue its commit puts it
/// back in: the commit needs no read of the job's `prio`, a field most
/// jobs lack (a search to the end of the hash).
pub const QUEUE: &str = "queue";
/// The last applied commit.
pub const COMMIT_ID: &str = "commit_id";
