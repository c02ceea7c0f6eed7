//! The codes flinkq gives a job itself, when no FlinksCode says why a step
//! failed or a job ended: network faults, bodies it refuses, results it
//! cannot write, and the bounds it enforces. One enum instead of string
//! literals, so metrics, the CLI and the README name the same set.
//! (`HTTP_<status>` codes are built from the status instead.)

use std::fmt;

/// A flinkq-local error code, stored in the job's `err_code` like a FlinksCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalCode {
    /// The call did not finish within FLINKQ_HTTP_TIMEOUT (body included).
    Timeout,
    /// No connection to Flinks could be made.
    Connect,
    /// The answer's body broke off while it was being read.
    Body,
    /// Any other transport failure.
    Network,
    /// A 200 whose body is not valid UTF-8 JSON of the expected shape, or an
    /// Authorize 200 without a session.
    BadBody,
    /// A 200 payload larger than FLINKQ_MAX_PAYLOAD.
    PayloadTooLarge,
    /// The payload could not be stored (results directory, disk).
    ResultWrite,
    /// Still pending (or waiting to poll) at the polling deadline.
    PollTimeout,
    /// No session by the authorize deadline (first claim + `FLINKQ_AUTHORIZE_TIMEOUT`).
    AuthorizeTimeout,
    /// Claimed more than `FLINKQ_MAX_CLAIMS` times without a commit: the
    /// worker died on it each time.
    PoisonPill,
}

impl LocalCode {
    /// Every local code, for bounded metric labels.
    pub const ALL: [LocalCode; 10] = [
        LocalCode::Timeout,
        LocalCode::Connect,
        LocalCode::Body,
        LocalCode::Network,
        LocalCode::BadBody,
        LocalCode::PayloadTooLarge,
        LocalCode::ResultWrite,
        LocalCode::PollTimeout,
        LocalCode::AuthorizeTimeout,
        LocalCode::PoisonPill,
    ];

    /// The code as stored in a job's error and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalCode::Timeout => "TIMEOUT",
            LocalCode::Connect => "CONNECT",
            LocalCode::Body => "BODY",
            LocalCode::Network => "NETWORK",
            LocalCode::BadBody => "BAD_BODY",
            LocalCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            LocalCode::ResultWrite => "RESULT_WRITE",
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
    fn every_code_parses_back_and_none_is_a_flinks_code() {
        for code in LocalCode::ALL {
            assert_eq!(LocalCode::parse(code.as_str()), Some(code));
            assert_eq!(crate::known_code(code.as_str()), None, "{code}");
        }
        assert_eq!(LocalCode::parse("HTTP_500"), None);
        assert_eq!(LocalCode::parse("SESSION_EXPIRED"), None);
    }
}
