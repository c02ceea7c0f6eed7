//! The Redis key schema, for Rust and Lua alike: everything lives under
//! `flinkq:{<namespace>}:`.
//!
//! The braces are a cluster hash tag: every key of one namespace hashes to one
//! slot, so each Lua script touches a single slot on a single Redis, under
//! Sentinel, or on a Redis Cluster.
//!
//! [`SCRIPT_KEYS`] is the one list of key names: [`Keys`] builds them for
//! Rust, and every script receives those it uses in `KEYS`, in that list's
//! order, bound to names by a prelude generated from the same list (see
//! [`lua_prelude`]): `K.leases`, `K.due`, … and `job_key(id)`, …. Which keys
//! a script uses is read from its text (`scripts.rs`); a name it was not
//! given fails loudly (`K` errors on it, a missing `<name>_key` is an
//! undefined global), never reads nil.
//!
//! # The one exception: per-record keys
//!
//! Keys named after a record — `job:<id>`, `active:<login>:<product>`,
//! `latest:<login>:<product>`, `batch:<name>`, `result:<login>:<product>`,
//! `schedule:run:<tick>`, `schedule:tick:<tick>` — are passed as their
//! prefix ([`KeyName::PerRecord`]) and completed inside the script, because
//! the record is often only known there: the ids `claim` pops from a due
//! queue, the expired leases `reap` walks, the login and batch `finish`
//! reads from a job hash. Passing them from Rust would cost a round trip on
//! the claim and commit hot paths. The prefix carries the namespace's hash
//! tag, so every key a script completes stays in the slot of its `KEYS`.

use crate::{JobId, LoginId, Product};

/// One entry of the key schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    /// A key of its own: (Lua name bound as `K.<name>`, key after the prefix).
    Fixed(&'static str, &'static str),
    /// A key per record: (Lua function `<name>_key(record)`, prefix before
    /// the record). See the module's exception note.
    PerRecord(&'static str, &'static str),
}

/// Every key a script may touch, in the order scripts receive them in
/// `KEYS`. [`Keys::script_keys`] and [`lua_prelude`] both follow this list,
/// and each binary loads scripts built from its own copy, so entries may be
/// added or reordered freely.
pub const SCRIPT_KEYS: &[KeyName] = &[
    KeyName::Fixed("due_high", "due:high"),
    KeyName::Fixed("due", "due"),
    KeyName::Fixed("due_low", "due:low"),
    KeyName::Fixed("leases", "leases"),
    KeyName::Fixed("deadlines", "deadlines"),
    KeyName::Fixed("dead", "dead"),
    KeyName::Fixed("finished", "finished"),
    KeyName::Fixed("counts", "counts"),
    KeyName::Fixed("batches", "batches"),
    KeyName::Fixed("results", "results"),
    KeyName::Fixed("events", "events"),
    KeyName::Fixed("ratelimit", "ratelimit"),
    KeyName::Fixed("reap_sweep", "reap:sweep"),
    KeyName::Fixed("logins", "logins"),
    KeyName::Fixed("schedule_runs", "schedule:runs"),
    KeyName::Fixed("schedule_last", "schedule:last"),
    KeyName::Fixed("workers", "workers"),
    KeyName::PerRecord("job", "job:"),
    KeyName::PerRecord("active", "active:"),
    KeyName::PerRecord("latest", "latest:"),
    KeyName::PerRecord("batch", "batch:"),
    KeyName::PerRecord("result", "result:"),
    KeyName::PerRecord("schedule_run", "schedule:run:"),
    KeyName::PerRecord("schedule_tick", "schedule:tick:"),
];

/// The key suffix of a [`SCRIPT_KEYS`] entry, by its Lua name: the Rust
/// builders below read the schema from the one list too.
fn suffix(name: &str) -> &'static str {
    SCRIPT_KEYS
        .iter()
        .find_map(|key| match key {
            KeyName::Fixed(n, suffix) | KeyName::PerRecord(n, suffix) if *n == name => {
                Some(*suffix)
            }
            _ => None,
        })
        .unwrap_or_else(|| unreachable!("key {name} is not in SCRIPT_KEYS"))
}

/// The Lua lines that bind `KEYS` to names, prepended to every script:
/// `K.<name>` for a fixed key, `<name>_key(record)` for a per-record one,
/// for the [`SCRIPT_KEYS`] entries at `used` (ascending), which the script
/// receives in that order.
pub fn lua_prelude(used: &[usize]) -> String {
    let mut fixed = String::from("local K = setmetatable({\n");
    let mut per_record = String::new();
    for (i, at) in used.iter().enumerate() {
        let slot = i + 1;
        match SCRIPT_KEYS[*at] {
            KeyName::Fixed(name, _) => fixed.push_str(&format!("  {name} = KEYS[{slot}],\n")),
            KeyName::PerRecord(name, _) => per_record.push_str(&format!(
                "local function {name}_key(record) return KEYS[{slot}] .. record end\n"
            )),
        }
    }
    // a key the script was not given is a bug: an error, not a nil key
    fixed.push_str(
        "}, { __index = function(_, name) error('key ' .. tostring(name) .. ' was not passed to this script') end })\n",
    );
    // the product of a job hash without a `product` field (stored before
    // products existed): named by the Rust table, never written in Lua
    let default_product = format!("local DEFAULT_PRODUCT = '{}'\n", Product::DEFAULT.as_str());
    format!(
        "-- KEYS bound by name (generated from SCRIPT_KEYS in shared/src/store/keys.rs)\n{fixed}{per_record}{default_product}"
    )
}

/// The record of the per-(login, product) keys (`active:`, `latest:`,
/// `result:`): `<loginId>:<product>`. Lua builds the same record in one
/// place too (`login_record` in `lua/common.lua`). A loginId is a UUID and a
/// product name lowercase words joined by `-`, so the record is unambiguous.
pub fn login_record(login: &LoginId, product: Product) -> String {
    format!("{login}:{product}")
}

/// Key names of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    script_keys: Vec<String>,
}

impl Keys {
    /// Keys of `namespace`.
    pub fn new(namespace: &str) -> Self {
        let prefix = format!("flinkq:{{{namespace}}}:");
        let script_keys = SCRIPT_KEYS
            .iter()
            .map(|key| match key {
                KeyName::Fixed(_, suffix) | KeyName::PerRecord(_, suffix) => {
                    format!("{prefix}{suffix}")
                }
            })
            .collect();
        Keys {
            prefix,
            script_keys,
        }
    }

    /// The namespace's prefix, hash tag included.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every script key, in [`SCRIPT_KEYS`] order.
    pub fn script_keys(&self) -> &[String] {
        &self.script_keys
    }

    /// The script keys at `used` (positions in [`SCRIPT_KEYS`]), in order:
    /// a script's `KEYS`.
    pub(crate) fn used<'a>(&'a self, used: &'a [usize]) -> impl Iterator<Item = &'a String> + 'a {
        used.iter().map(|at| &self.script_keys[*at])
    }

    fn named(&self, name: &str, record: impl std::fmt::Display) -> String {
        format!("{}{}{record}", self.prefix, suffix(name))
    }

    /// `job:<id>`: the job hash.
    pub fn job(&self, id: JobId) -> String {
        self.named("job", id)
    }

    /// `latest:<loginId>:<product>`: the id of the newest job of a login
    /// for one product.
    pub fn latest(&self, login: &LoginId, product: Product) -> String {
        self.named("latest", login_record(login, product))
    }

    /// `active:<loginId>:<product>`: the id of the login's unfinished job of
    /// one product (dedupe: one per (login, product)).
    pub fn active(&self, login: &LoginId, product: Product) -> String {
        self.named("active", login_record(login, product))
    }

    /// `counts`: per-state counters of the namespace.
    pub fn counts(&self) -> String {
        self.named("counts", "")
    }

    /// `batch:<name>`: per-state counters of one batch.
    pub fn batch(&self, batch: &str) -> String {
        self.named("batch", batch)
    }

    /// `due`: the normal-priority due queue, job id -> when its next step
    /// may run (ms); `due:high` and `due:low` sit beside it.
    pub fn due(&self) -> String {
        self.named("due", "")
    }

    /// The three due queues, high priority first.
    pub fn due_queues(&self) -> [String; 3] {
        [
            self.named("due_high", ""),
            self.named("due", ""),
            self.named("due_low", ""),
        ]
    }

    /// `workers`: worker name -> when it last said it runs (Redis ms).
    pub fn workers(&self) -> String {
        self.named("workers", "")
    }

    /// `leases`: job id -> when its current claim expires (ms).
    pub fn leases(&self) -> String {
        self.named("leases", "")
    }

    /// `deadlines`: job id -> its polling or authorize deadline (ms).
    pub fn deadlines(&self) -> String {
        self.named("deadlines", "")
    }

    /// `dead`: failed and timed-out job ids by finish time.
    pub fn dead(&self) -> String {
        self.named("dead", "")
    }

    /// `finished`: every finished job id by finish time (retention).
    pub fn finished(&self) -> String {
        self.named("finished", "")
    }

    /// `batches`: batch name → first enqueue (ms).
    pub fn batches(&self) -> String {
        self.named("batches", "")
    }

    /// `logins`: the registry of logins refreshed by `flinkq refresh`.
    pub fn logins(&self) -> String {
        self.named("logins", "")
    }

    /// `events`: stream of batch completion events.
    pub fn events(&self) -> String {
        self.named("events", "")
    }

    /// `results`: stream with one entry per finished job.
    pub fn results(&self) -> String {
        self.named("results", "")
    }

    /// `result:<loginId>:<product>`: the login's newest stored result of
    /// one product (pointer or payload).
    pub fn result(&self, login: &LoginId, product: Product) -> String {
        self.named("result", login_record(login, product))
    }

    /// `schedule:last`: the newest cron tick a scheduler ran (ms).
    pub fn schedule_last(&self) -> String {
        self.named("schedule_last", "")
    }

    /// `schedule:runs`: tick (ms) of every recorded scheduler run, by tick.
    pub fn schedule_runs(&self) -> String {
        self.named("schedule_runs", "")
    }

    /// `schedule:run:<tick_ms>`: one scheduler run (replica, batch, counts).
    pub fn schedule_run(&self, tick_ms: u64) -> String {
        self.named("schedule_run", tick_ms)
    }

    /// `schedule:tick:<tick_ms>`: the per-tick lock; holds the winning replica.
    pub fn schedule_tick(&self, tick_ms: u64) -> String {
        self.named("schedule_tick", tick_ms)
    }

    /// `wait:mark`: written by every write followed by `WAIT` (see
    /// `Store::write_durably`), so that `WAIT` counts replicas up to the
    /// primary's offset at that moment even when the write itself changed
    /// nothing. No script touches it, so it is not in [`SCRIPT_KEYS`]; it
    /// carries the namespace's hash tag, so it lives on the namespace's
    /// node.
    pub fn wait_mark(&self) -> String {
        format!("{}wait:mark", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("nightly");
        assert_eq!(keys.prefix(), "flinkq:{nightly}:");
        let id: JobId = "0190c5e2-8a4b-7c3d-9e1f-2a3b4c5d6e7f"
            .parse()
            .expect("uuid");
        assert_eq!(
            keys.job(id),
            "flinkq:{nightly}:job:0190c5e2-8a4b-7c3d-9e1f-2a3b4c5d6e7f"
        );
        assert_eq!(keys.due(), "flinkq:{nightly}:due");
        assert_eq!(keys.wait_mark(), "flinkq:{nightly}:wait:mark");
        assert!(
            keys.script_keys()
                .iter()
                .all(|key| key.starts_with("flinkq:{nightly}:"))
        );
    }

    #[test]
    fn the_lua_prelude_binds_the_used_script_keys_by_their_position() {
        let position = |key: KeyName| SCRIPT_KEYS.iter().position(|k| *k == key).expect("key");
        let leases = position(KeyName::Fixed("leases", "leases"));
        let job = position(KeyName::PerRecord("job", "job:"));
        let prelude = lua_prelude(&[leases, job]);
        assert!(prelude.contains("  leases = KEYS[1],\n"), "{prelude}");
        assert!(
            prelude.contains("local function job_key(record) return KEYS[2] .. record end"),
            "{prelude}"
        );
        assert!(!prelude.contains("due_high"), "{prelude}");
        assert!(prelude.contains("__index = function"), "{prelude}");
        assert!(
            prelude.contains(&format!(
                "local DEFAULT_PRODUCT = '{}'",
                Product::DEFAULT.as_str()
            )),
            "{prelude}"
        );
    }

    #[test]
    fn per_login_keys_are_per_login_and_product() {
        let keys = Keys::new("n");
        let login: LoginId = "7b8d2f4e-1c3a-4e5b-9f6d-0a1b2c3d4e5f"
            .parse()
            .expect("uuid");
        let detail: Product = "accounts-detail".parse().expect("known");
        assert_eq!(
            keys.active(&login, detail),
            "flinkq:{n}:active:7b8d2f4e-1c3a-4e5b-9f6d-0a1b2c3d4e5f:accounts-detail"
        );
        assert_ne!(
            keys.latest(&login, detail),
            keys.latest(&login, Product::DEFAULT)
        );
        assert_ne!(
            keys.result(&login, detail),
            keys.result(&login, Product::DEFAULT)
        );
    }
}
