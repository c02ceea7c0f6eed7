//! Per-state job counters, as `flinkq status` prints them.

use std::collections::HashMap;

use serde::Serialize;

use crate::JobState;

/// How many jobs are in each state (of a namespace or of one batch). The
/// HTTP API returns it as is, under the schema name `Counts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Counts))]
pub struct StateCounts {
    /// Enqueued, never run.
    pub queued: u64,
    /// Authorize next.
    pub authorizing: u64,
    /// A data call next (any stage of the product).
    pub polling: u64,
    /// Done, payload stored.
    pub succeeded: u64,
    /// Failed for good.
    pub failed: u64,
    /// Deadline passed.
    pub timed_out: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// All jobs ever enqueued.
    pub total: u64,
}

impl StateCounts {
    pub(crate) fn from_hash(hash: &HashMap<String, i64>) -> Self {
        let get = |name: &str| hash.get(name).copied().unwrap_or(0).max(0).unsigned_abs();
        StateCounts {
            queued: get("queued"),
            authorizing: get("authorizing"),
            polling: get("polling"),
            succeeded: get("succeeded"),
            failed: get("failed"),
            timed_out: get("timed_out"),
            cancelled: get("cancelled"),
            total: get("total"),
        }
    }

    /// The count of one state.
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Queued => self.queued,
            JobState::Authorizing => self.authorizing,
            JobState::Polling => self.polling,
            JobState::Succeeded => self.succeeded,
            JobState::Failed => self.failed,
            JobState::TimedOut => self.timed_out,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// Counts one more job in `state` (and in `total`).
    pub fn add(&mut self, state: JobState) {
        let count = match state {
            JobState::Queued => &mut self.queued,
            JobState::Authorizing => &mut self.authorizing,
            JobState::Polling => &mut self.polling,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Failed => &mut self.failed,
            JobState::TimedOut => &mut self.timed_out,
            JobState::Cancelled => &mut self.cancelled,
        };
        *count += 1;
        self.total += 1;
    }

    /// Jobs that can still run.
    pub fn unfinished(&self) -> u64 {
        self.queued + self.authorizing + self.polling
    }
}
