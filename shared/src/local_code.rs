//! Error codes flinkq gives a job itself, when no FlinksCode says why it
//! ended: one enum instead of string literals, so metrics, the CLI and the
//! README name the same set.

use std::fmt;

/// A flinkq-local error code, stored in the job's `err_code` like a FlinksCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalCode {
    /// Still pending (or waiting to poll) at the polling deadline.
    PollTimeout,
    /// No session by the authorize deadline (first claim + `FLINKQ_AUTHORIZE_TIMEOUT`).
    AuthorizeTimeout,
    /// Claimed more than `FLINKQ_MAX_CLAIMS` times without a commit: the
    /// worker died on it each time.
    PoisonPill,
}

impl LocalCode {
    /// Every local code.
    pub const ALL: [LocalCode; 3] = [
        LocalCode::PollTimeout,
        LocalCode::AuthorizeTimeout,
        LocalCode::PoisonPill,
    ];

    /// The code as stored in Redis and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalCode::PollTimeout => "POLL_TIMEOUT",
            LocalCode::AuthorizeTimeout => "AUTHORIZE_TIMEOUT",
            LocalCode::PoisonPill => "POISON_PILL",
        }
    }

    /// The local code spelled `code`, if it is one.
    pub fn parse(code: &str) -> Option<LocalCode> {
        LocalCode::ALL
            .into_iter()
            .find(|local| local.as_str() == code)
    }
}

impl fmt::Display for LocalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back() {
        for code in LocalCode::ALL {
            assert_eq!(LocalCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(LocalCode::parse("SESSION_EXPIRED"), None);
    }
}
