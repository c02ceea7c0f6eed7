//! The Lua scripts, each one atomic EVALSHA. Each is prepended with the
//! `KEYS` bindings generated from the key schema ([`super::keys::lua_prelude`])
//! and `lua/common.lua` (clock, counters, `finish`).

use redis::Script;

macro_rules! script {
    ($file:literal) => {
        script!($file, "")
    };
    // `$binding`: Lua lines between common.lua and the script, generated
    // from the Rust list that names the script's arguments
    ($file:literal, $binding:expr) => {
        Script::new(&format!(
            "{}{}\n{}{}",
            super::keys::lua_prelude(),
            include_str!("../../lua/common.lua"),
            $binding,
            include_str!(concat!("../../lua/", $file))
        ))
    };
}

/// All scripts, hashed once.
#[derive(Debug)]
pub struct Scripts {
    /// `enqueue(batch, priority, product, loginId, jobId, ...)`.
    pub enqueue: Script,
    /// `claim(n, lease_ms, token_base, authorize_timeout_ms, poll_spacing_ms)`:
    /// each job's values in [`super::claim::CLAIMED_FIELDS`] order.
    pub claim: Script,
    /// `commit(id, token, login, commit_id, ...)`: positional, in
    /// [`super::COMMIT_ARGS`] order.
    pub commit: Script,
    /// `resolve_commit(id, token, commit_id)`.
    pub resolve_commit: Script,
    /// `extend(lease_ms, id, token, ...)`.
    pub extend: Script,
    /// `begin(lease_ms, id, token, spacing_ms, rate_per_sec, burst)`.
    pub begin: Script,
    /// `reap(limit, sweep)`.
    pub reap: Script,
    /// `release(id, token, ...)`.
    pub release: Script,
    /// `cancel(loginId, product)`.
    pub cancel: Script,
    /// `retry_dead(id...)`.
    pub retry_dead: Script,
    /// `retry_dead_page(bound_ms, after_score, after_id, limit, run, product)`.
    pub retry_dead_page: Script,
    /// `purge(set, older_than_ms, limit, product, offset)`.
    pub purge: Script,
    /// `purge_dead(id...)`.
    pub purge_dead: Script,
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
            enqueue: script!("enqueue.lua"),
            claim: script!("claim.lua", super::claim::lua_binding()),
            commit: script!("commit.lua", super::commit::lua_binding()),
            resolve_commit: script!("resolve_commit.lua"),
            extend: script!("extend.lua"),
            begin: script!("begin.lua"),
            reap: script!("reap.lua"),
            release: script!("release.lua"),
            cancel: script!("cancel.lua"),
            retry_dead: script!("retry_dead.lua"),
            retry_dead_page: script!("retry_dead_page.lua"),
            purge: script!("purge.lua"),
            purge_dead: script!("purge_dead.lua"),
            stats: script!("stats.lua"),
            schedule_claim: script!("schedule_claim.lua"),
            schedule_extend: script!("schedule_extend.lua"),
            schedule_adopt: script!("schedule_adopt.lua"),
            schedule_finish: script!("schedule_finish.lua"),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts::new()
    }
}
