//! What the simulator saw: per-login counters, totals and contract violations.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Everything seen for one login.
#[derive(Debug, Clone, Default)]
pub struct LoginStats {
    /// Authorize calls.
    pub authorize_calls: u32,
    /// /Investments calls.
    pub investments_calls: u32,
    /// When each Authorize call arrived.
    pub authorize_times: Vec<Instant>,
    /// When each /Investments call arrived.
    pub investments_times: Vec<Instant>,
    /// When the 200 with the payload was served.
    pub succeeded_at: Option<Instant>,
    /// /Investments calls after the 200.
    pub calls_after_success: u32,
    /// Smallest gap between two consecutive /Investments calls of one session.
    pub min_poll_spacing: Option<Duration>,
    /// First /Investments call (the deadline counts from it).
    pub first_investments_at: Option<Instant>,
    /// Did any request carry `flinks-auth-key`?
    pub auth_header_seen: bool,
    /// 202 answers served.
    pub pending_served: u32,
}

impl LoginStats {
    /// The shortest wait between a poll and the login's next call of either
    /// endpoint (a poll, or an Authorize after a lost session); `None` with
    /// no call after a poll. The Flinks contract: never below the interval.
    pub fn min_gap_after_a_poll(&self) -> Option<Duration> {
        let mut calls: Vec<(Instant, bool)> = self
            .investments_times
            .iter()
            .map(|at| (*at, true))
            .chain(self.authorize_times.iter().map(|at| (*at, false)))
            .collect();
        calls.sort_by_key(|(at, _)| *at);
        calls
            .windows(2)
            .filter(|pair| pair[0].1)
            .map(|pair| pair[1].0.saturating_duration_since(pair[0].0))
            .min()
    }

    /// The shortest wait between two Authorize calls; `None` with fewer than two.
    pub fn min_authorize_spacing(&self) -> Option<Duration> {
        self.authorize_times
            .windows(2)
            .map(|pair| pair[1].saturating_duration_since(pair[0]))
            .min()
    }
}

/// Totals over all logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Authorize calls.
    pub authorize_calls: u64,
    /// /Investments calls.
    pub investments_calls: u64,
    /// 200 payloads served.
    pub successes: u64,
    /// 202 answers served.
    pub pending_answers: u64,
    /// Sessions answered `SESSION_EXPIRED` / `SESSION_NONEXISTENT`.
    pub session_errors: u64,
    /// Requests refused as malformed or unauthorized.
    pub rejected: u64,
    /// Injected faults served.
    pub faults: u64,
    /// Polls after a success that followed a noted worker crash (allowed:
    /// steps are at-least-once).
    pub repeats_after_crash: u64,
}

/// A broken rule of the Flinks contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum Violation {
    /// Two polls of one session closer than the minimum interval.
    PollTooSoon {
        /// The login.
        login: String,
        /// The gap, in ms.
        gap_ms: u64,
    },
    /// A poll after the 200 was served.
    PollAfterSuccess {
        /// The login.
        login: String,
        /// How long after the 200, in ms.
        after_ms: u64,
        /// The nearest noted crash, in ms after the 200 (negative: before).
        last_crash_after_ms: Option<i64>,
    },
    /// A poll later than the polling limit after the first poll.
    PollAfterDeadline {
        /// The login.
        login: String,
        /// How late, in ms.
        late_by_ms: u64,
    },
    /// /Investments with a RequestId never issued, or issued to another login.
    InvestmentsWithoutSession {
        /// The login.
        login: String,
    },
}
