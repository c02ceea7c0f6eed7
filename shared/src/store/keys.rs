//! The Redis key schema: everything lives under `flinkq:{<namespace>}:`.
//!
//! The braces are a cluster hash tag: every key of one namespace hashes to one
//! slot, so each Lua script touches a single slot on a single Redis, under
//! Sentinel, or on a Redis Cluster.

use crate::{JobId, LoginId};

/// Key names of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys of `namespace`.
    pub fn new(namespace: &str) -> Self {
        Keys {
            prefix: format!("flinkq:{{{namespace}}}:"),
        }
    }

    /// The prefix every script receives as `KEYS[1]`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `job:<id>`: the job hash.
    pub fn job(&self, id: JobId) -> String {
        format!("{}job:{id}", self.prefix)
    }

    /// `latest:<loginId>`: the id of the newest job of a login.
    pub fn latest(&self, login: &LoginId) -> String {
        format!("{}latest:{login}", self.prefix)
    }

    /// `active:<loginId>`: the id of the login's unfinished job (dedupe).
    pub fn active(&self, login: &LoginId) -> String {
        format!("{}active:{login}", self.prefix)
    }

    /// `counts`: per-state counters of the namespace.
    pub fn counts(&self) -> String {
        format!("{}counts", self.prefix)
    }

    /// `batch:<name>`: per-state counters of one batch.
    pub fn batch(&self, batch: &str) -> String {
        format!("{}batch:{batch}", self.prefix)
    }

    /// `due`: the normal-priority due queue, job id -> when its next step
    /// may run (ms); `due:high` and `due:low` sit beside it.
    pub fn due(&self) -> String {
        format!("{}due", self.prefix)
    }

    /// `batches`: batch name → first enqueue (ms).
    pub fn batches(&self) -> String {
        format!("{}batches", self.prefix)
    }

    /// `logins`: the registry of logins refreshed by `flinkq refresh`.
    pub fn logins(&self) -> String {
        format!("{}logins", self.prefix)
    }

    /// `events`: stream of batch completion events.
    pub fn events(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// `results`: stream with one entry per finished job.
    pub fn results(&self) -> String {
        format!("{}results", self.prefix)
    }

    /// `result:<loginId>`: the login's newest stored result (pointer or payload).
    pub fn result(&self, login: &LoginId) -> String {
        format!("{}result:{login}", self.prefix)
    }

    /// `dead`: failed and timed-out job ids by finish time.
    pub fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }

    /// `leases`: job id -> when its current claim expires (ms).
    pub fn leases(&self) -> String {
        format!("{}leases", self.prefix)
    }

    /// `schedule:last`: the newest cron tick a scheduler ran (ms).
    pub fn schedule_last(&self) -> String {
        format!("{}schedule:last", self.prefix)
    }

    /// `schedule:runs`: tick (ms) of every recorded scheduler run, by tick.
    pub fn schedule_runs(&self) -> String {
        format!("{}schedule:runs", self.prefix)
    }

    /// `schedule:run:<tick_ms>`: one scheduler run (replica, batch, counts).
    pub fn schedule_run(&self, tick_ms: u64) -> String {
        format!("{}schedule:run:{tick_ms}", self.prefix)
    }

    /// `schedule:tick:<tick_ms>`: the per-tick lock; holds the winning replica.
    pub fn schedule_tick(&self, tick_ms: u64) -> String {
        format!("{}schedule:tick:{tick_ms}", self.prefix)
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
    }
}
