//! `ClaimedStep`: one claimed job on its way to the executor, with the lease
//! and concurrency slot it holds, and the clock it is judged by.

use std::time::Instant;

use flinkq_shared::store::Claim;
use tokio::sync::OwnedSemaphorePermit;

use crate::leases::LeaseGuard;

/// Redis' clock as of the claim, advanced by local monotonic time: every
/// decision about a step uses Redis time without another round trip, and
/// workers on hosts with skewed clocks still agree. Anchored at the moment
/// the claim was sent and rounded up, it runs at or slightly ahead of Redis,
/// never behind: intervals computed from it are never short.
#[derive(Debug, Clone, Copy)]
pub struct StepClock {
    redis_ms: u64,
    at: Instant,
}

impl StepClock {
    /// Anchors the clock: Redis said `redis_ms` at local `at`.
    pub fn new(redis_ms: u64, at: Instant) -> Self {
        StepClock { redis_ms, at }
    }

    /// The local instant the claim was sent: its lease runs at most from here.
    pub fn anchor(&self) -> Instant {
        self.at
    }

    /// Now, in ms since the epoch on Redis' clock.
    pub fn now_ms(&self) -> u64 {
        self.redis_ms + u64::try_from(self.at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A claimed step. Dropping it frees its concurrency slot and forgets its lease.
#[derive(Debug)]
pub struct ClaimedStep {
    /// The job as claimed, and the only way to act on it.
    pub claim: Claim,
    /// Redis time, as of the claim.
    pub clock: StepClock,
    pub(crate) _lease: LeaseGuard,
    pub(crate) _slot: OwnedSemaphorePermit,
}
