//! The timing policy of a job: poll interval, deadlines, retry backoff, and
//! the limits that keep every loop bounded (attempts, sessions, claims).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Timing rules the state machine applies. Configuration, not constants, so
/// tests run a "30-minute" poll in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Wait between two /Investments calls of one job (Flinks: 10 s).
    pub poll_interval: Duration,
    /// How long a job may poll, from its first /Investments call (Flinks: 30 min).
    pub poll_timeout: Duration,
    /// First retry delay ceiling after a transient failure.
    pub retry_base: Duration,
    /// Largest retry delay ceiling.
    pub retry_cap: Duration,
    /// Consecutive transient failures of one step before the job fails.
    pub max_attempts: u32,
    /// How long a job may go without a session, from its first claim: a job
    /// whose Authorize keeps answering 202 or asking to retry later ends
    /// `timed_out` there instead of looping forever.
    pub authorize_timeout: Duration,
    /// Sessions one run of a job may obtain: a login whose every session is
    /// lost at once fails after this many instead of re-authorizing forever.
    pub max_sessions: u32,
    /// Claims without a commit before the job fails as a poison pill: a job
    /// that kills its worker (out of memory, a panic) must not kill the next.
    pub max_claims: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            poll_interval: Duration::from_secs(10),
            poll_timeout: Duration::from_secs(30 * 60),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            max_attempts: 10,
            authorize_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10,
            max_claims: 5,
        }
    }
}

impl Policy {
    /// Delay before retry number `attempt` (1-based) of a step: exponential
    /// from `retry_base`, capped at `retry_cap`, with full jitter (`jitter` is
    /// a uniform sample in `[0, 1)` supplied by the caller), and never shorter
    /// than the server's `Retry-After` — itself capped at `retry_cap`, so a
    /// provider answering `Retry-After: 31536000` cannot park a job for a year.
    ///
    /// The attempt count comes from the job in Redis, so a restart does not
    /// reset the backoff.
    pub fn retry_delay(
        &self,
        attempt: u32,
        jitter: f64,
        retry_after: Option<Duration>,
    ) -> Duration {
        let ceiling = ExponentialBuilder::new()
            .with_min_delay(self.retry_base)
            .with_max_delay(self.retry_cap)
            .with_factor(2.0)
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.retry_cap);
        let jittered = ceiling.mul_f64(jitter.clamp(0.0, 1.0));
        let asked = retry_after.unwrap_or_default().min(self.retry_cap);
        jittered.max(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_full_jitter() {
        let policy = Policy::default();
        let ceiling = |attempt| policy.retry_delay(attempt, 1.0, None);
        assert_eq!(ceiling(1), Duration::from_secs(1));
        assert_eq!(ceiling(2), Duration::from_secs(2));
        assert_eq!(ceiling(3), Duration::from_secs(4));
        assert_eq!(ceiling(7), Duration::from_secs(60));
        assert_eq!(ceiling(40), Duration::from_secs(60));
        assert_eq!(policy.retry_delay(3, 0.0, None), Duration::ZERO);
        assert_eq!(policy.retry_delay(3, 0.5, None), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = Policy::default();
        let after = Some(Duration::from_secs(30));
        assert_eq!(policy.retry_delay(1, 0.5, after), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_a_year_is_capped_at_the_retry_cap() {
        let policy = Policy::default();
        let year = Some(Duration::from_secs(31_536_000));
        assert_eq!(policy.retry_delay(1, 0.5, year), policy.retry_cap);
        assert_eq!(
            policy.retry_delay(1, 0.5, Some(Duration::MAX)),
            policy.retry_cap
        );
    }
}
