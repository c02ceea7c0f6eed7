//! The Lua scripts, each one atomic EVALSHA. Each is prepended with the
//! `KEYS` bindings generated from the key schema ([`super::keys::lua_prelude`])
//! and the parts of `lua/common.lua` (clock, counters, `finish`) it uses.
//!
//! Redis runs a script's whole text on every call: each key passed costs
//! some 90 ns, each `local function` and table of the prelude is built
//! again. So each script gets only what it refers to, read from its text:
//! the definitions of common.lua it names (and those they name), and the
//! keys the result names (`K.<name>`, `<name>_key(`). Nothing to list by
//! hand, so nothing to forget: a key the text does not name is not passed,
//! and reading one anyway fails (see `keys.rs`).

use redis::Script;

use super::keys::{KeyName, SCRIPT_KEYS, lua_prelude};

/// A script and the [`SCRIPT_KEYS`] it receives (their positions, in order).
#[derive(Debug)]
pub struct LuaScript {
    pub(super) script: Script,
    pub(super) keys: Vec<usize>,
}

impl std::ops::Deref for LuaScript {
    type Target = Script;

    fn deref(&self) -> &Script {
        &self.script
    }
}

/// common.lua's top-level definitions, in order: (name, text). Each starts
/// at a line `local function <name>(` or `local <name> =` (the comment
/// lines above a definition go with the one before it).
fn definitions(common: &str) -> Vec<(&str, String)> {
    let mut defs: Vec<(&str, String)> = Vec::new();
    for line in common.lines() {
        let name = line
            .strip_prefix("local function ")
            .or_else(|| line.strip_prefix("local "))
            .and_then(|rest| rest.split(|c: char| !is_word(c)).next())
            .filter(|name| !name.is_empty());
        match (name, defs.last_mut()) {
            (Some(name), _) => defs.push((name, format!("{line}\n"))),
            (None, Some((_, text))) => {
                text.push_str(line);
                text.push('\n');
            }
            // the file's own header comment
            (None, None) => {}
        }
    }
    defs
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `text` without its `--` comments: a name in a comment uses nothing.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names a script reads through a generated binding table `prefix`
/// (`"F."`, `"a."`), in its code (comments left out), in order: how the
/// bindings' tests check a script reads no name the Rust list lacks.
#[cfg(test)]
pub(super) fn names_read_through(script: &str, prefix: &str) -> Vec<String> {
    let code = code(script);
    code.match_indices(prefix)
        .filter(|(at, _)| !code[..*at].chars().next_back().is_some_and(is_word))
        .map(|(at, _)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| is_word(*c))
                .collect()
        })
        .collect()
}

/// Whether `text` names `word` (not as part of a longer name).
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The whole text of a script whose own lines are `body` (after `binding`,
/// Lua lines generated from the Rust list naming its arguments), and the
/// keys it receives.
fn build(body: &str, binding: &str) -> LuaScript {
    let common = include_str!("../../lua/common.lua");
    let defs = definitions(common);
    // the definitions the script names, then those they name, until none is added
    let mut used = vec![false; defs.len()];
    let mut reach = code(&format!("{binding}{body}"));
    loop {
        let mut added = false;
        for (i, (name, text)) in defs.iter().enumerate() {
            if !used[i] && names(&reach, name) {
                used[i] = true;
                reach.push('\n');
                reach.push_str(&code(text));
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    let common: String = defs
        .iter()
        .zip(&used)
        .filter(|(_, used)| **used)
        .map(|((_, text), _)| text.as_str())
        .collect();
    // `K[...]` (a key chosen at run time): every fixed key
    let dynamic = reach.contains("K[");
    let mut keys: Vec<usize> = SCRIPT_KEYS
        .iter()
        .enumerate()
        .filter(|(_, key)| match key {
            KeyName::Fixed(name, _) => dynamic || names(&reach, &format!("K.{name}")),
            KeyName::PerRecord(name, _) => names(&reach, &format!("{name}_key")),
        })
        .map(|(at, _)| at)
        .collect();
    if keys.is_empty() {
        // a call without keys goes to any node of a Redis Cluster: every
        // script names one key at least, so it runs where the namespace is
        keys.push(0);
    }
    LuaScript {
        script: Script::new(&format!(
            "{}-- from common.lua (shared/lua), the parts this script uses\n{common}\n{binding}{body}",
            lua_prelude(&keys)
        )),
        keys,
    }
}

macro_rules! script {
    ($file:literal) => {
        build(include_str!(concat!("../../lua/", $file)), "")
    };
    // `$binding`: Lua lines between common.lua and the script, generated
    // from the Rust list that names the script's arguments
    ($file:literal, $binding:expr) => {
        build(include_str!(concat!("../../lua/", $file)), &$binding)
    };
}

/// All scripts, hashed once.
#[derive(Debug)]
pub struct Scripts {
    /// `enqueue(batch, priority, product, loginId, jobId, ...)`.
    pub enqueue: LuaScript,
    /// `claim(n, lease_ms, token_base, authorize_timeout_ms, poll_spacing_ms)`:
    /// each job's values in [`super::claim::CLAIMED_FIELDS`] order.
    pub claim: LuaScript,
    /// `commit(segment, ...)`: one segment per commit, each positional in
    /// [`super::COMMIT_ARGS`] order, then its changed fields' count and
    /// pairs; one result per segment.
    pub commit: LuaScript,
    /// `resolve_commit(id, token, commit_id)`.
    pub resolve_commit: LuaScript,
    /// `extend(lease_ms, id, token, ...)`.
    pub extend: LuaScript,
    /// `begin(lease_ms, id, token, spacing_ms, rate_per_sec, burst)`.
    pub begin: LuaScript,
    /// `reap(limit, sweep)`.
    pub reap: LuaScript,
    /// `release(id, token, ...)`.
    pub release: LuaScript,
    /// `cancel(loginId, product)`.
    pub cancel: LuaScript,
    /// `retry_dead(id...)`.
    pub retry_dead: LuaScript,
    /// `retry_dead_page(bound_ms, after_score, after_id, limit, run, product)`.
    pub retry_dead_page: LuaScript,
    /// `purge(set, older_than_ms, limit, product, offset)`.
    pub purge: LuaScript,
    /// `purge_dead(id...)`.
    pub purge_dead: LuaScript,
    /// `stats()`.
    pub stats: LuaScript,
    /// `schedule_claim(tick_ms, replica, lock_ttl_ms, batch, kind, keep)`.
    pub schedule_claim: LuaScript,
    /// `schedule_extend(tick_ms, replica, lease_ms)`.
    pub schedule_extend: LuaScript,
    /// `schedule_adopt(replica, lease_ms)`.
    pub schedule_adopt: LuaScript,
    /// `schedule_finish(tick_ms, replica, enqueued, already_active, already_in_batch)`.
    pub schedule_finish: LuaScript,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key_names(script: &LuaScript) -> Vec<&'static str> {
        script
            .keys
            .iter()
            .map(|at| match SCRIPT_KEYS[*at] {
                KeyName::Fixed(name, _) | KeyName::PerRecord(name, _) => name,
            })
            .collect()
    }

    #[test]
    fn a_script_gets_the_keys_and_common_parts_it_names_and_no_others() {
        let scripts = Scripts::new();
        let commit = key_names(&scripts.commit);
        // its own, and those of finish_job (which it calls) and what that calls
        for key in [
            "job",
            "leases",
            "due",
            "due_high",
            "deadlines",
            "counts",
            "batch",
            "result",
            "results",
            "events",
            "active",
            "dead",
            "finished",
        ] {
            assert!(commit.contains(&key), "commit lacks {key}: {commit:?}");
        }
        for key in ["schedule_run", "ratelimit", "workers", "logins"] {
            assert!(!commit.contains(&key), "commit gets {key}: {commit:?}");
        }
        let extend = key_names(&scripts.extend);
        assert_eq!(extend, ["leases", "job"], "{extend:?}");
    }

    #[test]
    fn common_parts_come_with_what_they_name() {
        let common = include_str!("../../lua/common.lua");
        let defs = definitions(common);
        let names: Vec<&str> = defs.iter().map(|(name, _)| *name).collect();
        for name in [
            "now_ms",
            "TERMINAL",
            "DUE_QUEUES",
            "finish_job",
            "delete_job",
        ] {
            assert!(names.contains(&name), "{name} not found in {names:?}");
        }
        // finish calls finish_job, which reads UNFINISHED and moves counts
        let script = build("return finish(ARGV[1], 'failed', 1)\n", "");
        let keys: Vec<&str> = key_names(&script);
        for key in [
            "job", "counts", "batch", "results", "active", "dead", "finished",
        ] {
            assert!(keys.contains(&key), "finish lacks {key}: {keys:?}");
        }
        assert!(!keys.contains(&"schedule_tick"), "{keys:?}");
    }

    #[test]
    fn a_key_chosen_at_run_time_gets_every_fixed_key_and_none_gets_one() {
        let dynamic = build("return redis.call('ZCARD', K[ARGV[1]])\n", "");
        let fixed = SCRIPT_KEYS
            .iter()
            .filter(|key| matches!(key, KeyName::Fixed(..)))
            .count();
        assert_eq!(dynamic.keys.len(), fixed);
        // a Redis Cluster sends a call without keys to any node
        assert_eq!(build("return 1\n", "").keys.len(), 1);
    }

    #[test]
    fn names_are_whole_words() {
        assert!(names("x = K.due, y", "K.due"));
        assert!(!names("x = K.due_high", "K.due"));
        assert!(!names("local finish_job", "finish"));
        assert!(names("finish(id)", "finish"));
    }
}
