//! The Lua scripts, each one atomic EVALSHA. `lua/common.lua` (clock,
//! counters, `finish`) is prepended to each at compile time.

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("../../lua/common.lua"),
            "\n",
            include_str!(concat!("../../lua/", $file))
        )
    };
}

/// All scripts, hashed once.
#[derive(Debug)]
pub struct Scripts {
    /// `enqueue(batch, priority, loginId, jobId, ...)`.
    pub enqueue: Script,
    /// `claim(n, lease_ms, token_base)`.
    pub claim: Script,
    /// `commit(id, token, login, commit_id, ...)`.
    pub commit: Script,
    /// `resolve_commit(id, token, commit_id)`.
    pub resolve_commit: Script,
    /// `extend(lease_ms, id, token, ...)`.
    pub extend: Script,
    /// `begin(lease_ms, id, token, spacing_ms)`.
    pub begin: Script,
    /// `reap(limit, sweep)`.
    pub reap: Script,
    /// `release(id, token, ...)`.
    pub release: Script,
    /// `cancel(loginId)`.
    pub cancel: Script,
    /// `retry_dead(id...)`.
    pub retry_dead: Script,
    /// `retry_dead_page(bound_ms, after_score, after_id, limit, run)`.
    pub retry_dead_page: Script,
    /// `purge(set, older_than_ms, limit)`.
    pub purge: Script,
    /// `stats()`.
    pub stats: Script,
    /// `schedule_claim(tick_ms, replica, lock_ttl_ms, batch, kind, keep)`.
    pub schedule_claim: Script,
    /// `schedule_extend(tick_ms, replica, lease_ms)`.
    pub schedule_extend: Script,
    /// `schedule_adopt(replica, lease_ms)`.
    pub schedule_adopt: Script,
    /// `schedule_finish(tick_ms, replica, enqueued, already_active, already_in_batch)`.
    pub schedule_finish: Script,
}

impl Scripts {
    /// Builds the scripts (no I/O: they are loaded lazily by EVALSHA).
    pub fn new() -> Self {
        Scripts {
            enqueue: Script::new(script!("enqueue.lua")),
            claim: Script::new(script!("claim.lua")),
            commit: Script::new(script!("commit.lua")),
            resolve_commit: Script::new(script!("resolve_commit.lua")),
            extend: Script::new(script!("extend.lua")),
            begin: Script::new(script!("begin.lua")),
            reap: Script::new(script!("reap.lua")),
            release: Script::new(script!("release.lua")),
            cancel: Script::new(script!("cancel.lua")),
            retry_dead: Script::new(script!("retry_dead.lua")),
            retry_dead_page: Script::new(script!("retry_dead_page.lua")),
            purge: Script::new(script!("purge.lua")),
            stats: Script::new(script!("stats.lua")),
            schedule_claim: Script::new(script!("schedule_claim.lua")),
            schedule_extend: Script::new(script!("schedule_extend.lua")),
            schedule_adopt: Script::new(script!("schedule_adopt.lua")),
            schedule_finish: Script::new(script!("schedule_finish.lua")),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts::new()
    }
}
