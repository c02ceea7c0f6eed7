//! What the simulator saw: per-login and per-product counters, totals and
//! contract violations.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::product::Product;

/// Everything seen for one product of one login.
#[derive(Debug, Clone, Default)]
pub struct ProductStats {
    /// Calls (first calls and `…Async` polls).
    pub calls: u32,
    /// When each call arrived.
    pub times: Vec<Instant>,
    /// When the first 200 with the payload was served.
    pub succeeded_at: Option<Instant>,
    /// Calls after a 200 (see [`Violation::PollAfterSuccess`] for the scope).
    pub calls_after_success: u32,
    /// Smallest gap between two consecutive calls of one session.
    pub min_poll_spacing: Option<Duration>,
    /// First call (the deadline counts from it).
    pub first_call_at: Option<Instant>,
    /// 202 answers served from the script's pending count.
    pub pending_served: u32,
}

/// Everything seen for one login. The flat fields predate products and
/// mean the Investments product (or, for Authorize and the key, the login).
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
    /// Per product (Investments included).
    pub products: HashMap<Product, ProductStats>,
}

impl LoginStats {
    /// What was seen for one product (all zero if never called).
    pub fn product(&self, product: Product) -> ProductStats {
        self.products.get(&product).cloned().unwrap_or_default()
    }

    /// Keeps the flat Investments fields equal to the Investments product's.
    pub(crate) fn mirror_investments(&mut self) {
        let Some(investments) = self.products.get(&Product::Investments) else {
            return;
        };
        self.investments_calls = investments.calls;
        self.investments_times.clone_from(&investments.times);
        self.succeeded_at = investments.succeeded_at;
        self.calls_after_success = investments.calls_after_success;
        self.min_poll_spacing = investments.min_poll_spacing;
        self.first_investments_at = investments.first_call_at;
        self.pending_served = investments.pending_served;
    }

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
    /// Calls of every product, Investments included.
    pub product_calls: u64,
    /// 200 payloads served (every product).
    pub successes: u64,
    /// 202 answers served (every product).
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
    /// Two calls of one product in one session closer than the minimum interval.
    PollTooSoon {
        /// The login.
        login: String,
        /// The product.
        product: Product,
        /// The gap, in ms.
        gap_ms: u64,
    },
    /// A call of a product after its 200 was served: in the same session,
    /// or for Investments in any session of the login (its rule before
    /// products existed; the other products need a new session to call
    /// GetAccountsDetail again, e.g. for Attributes after a lost session).
    PollAfterSuccess {
        /// The login.
        login: String,
        /// The product.
        product: Product,
        /// How long after the 200, in ms.
        after_ms: u64,
        /// The nearest noted crash, in ms after the 200 (negative: before).
        last_crash_after_ms: Option<i64>,
    },
    /// A call later than the polling limit after the login's first call of
    /// the product.
    PollAfterDeadline {
        /// The login.
        login: String,
        /// The product.
        product: Product,
        /// How late, in ms.
        late_by_ms: u64,
    },
    /// /Investments with a RequestId never issued, or issued to another login.
    InvestmentsWithoutSession {
        /// The login.
        login: String,
    },
    /// A banking product called with a RequestId never issued (or, for
    /// Attributes, issued to another login than the one in its path).
    CallWithoutSession {
        /// The product.
        product: Product,
        /// The RequestId sent.
        request_id: String,
    },
    /// `GET …Async/{RequestId}` before the product's first call answered
    /// 202 in that session (or without any first call in it).
    AsyncBeforeFirstCall {
        /// The login.
        login: String,
        /// The product.
        product: Product,
    },
    /// Attributes called before GetAccountsDetail answered 200 in the same
    /// session.
    AttributesBeforeAccountsDetail {
        /// The login.
        login: String,
    },
}
