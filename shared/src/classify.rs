//! Classification of a Flinks answer: FlinksCode first, then HTTP status.
//!
//! HTTP status alone is ambiguous (401 covers both "retry later" and "invalid
//! login"), so a known FlinksCode always decides; the status decides only when
//! the code is missing or unknown. The table is DESIGN.md's, row for row.

/// What an answer means for the job: the one classification of a Flinks
/// answer, returned by [`classify`] and carried by a failed step
/// ([`crate::Outcome::Failed`]), so the state machine reacts to the same
/// value the client read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// HTTP 200 without a code that says otherwise: the step succeeded.
    Success,
    /// Still processing: poll again after the interval (a snooze, not an error).
    Pending,
    /// Try the same step again after a backoff, within the deadline.
    Transient,
    /// The session is gone: authorize again, keeping the original deadline.
    SessionLost,
    /// The end user must act (credentials, MFA challenge...): fail now.
    NeedsUser,
    /// The request itself is wrong: fail now.
    BadRequest,
}

const PENDING: &[&str] = &["OPERATION_PENDING", "OPERATION_DISPATCHED"];
const TRANSIENT: &[&str] = &[
    "RETRY_LATER",
    "TOO_MANY_REQUESTS",
    "CARD_IN_USE",
    "CONCURRENT_SESSION",
    "AGGREGATION_ERROR",
    "DISABLED_INSTITUTION",
];
const SESSION_LOST: &[&str] = &["SESSION_NONEXISTENT", "SESSION_EXPIRED"];
const NEEDS_USER: &[&str] = &[
    "INVALID_LOGIN",
    "DISABLED_LOGIN",
    "NEW_ACCOUNT",
    "ACCESS_DENIED",
    "UNAUTHORIZED",
    "INVALID_USERNAME",
    "INVALID_PASSWORD",
    "INVALID_SECURITY_RESPONSE",
    "QUESTION_NOT_FOUND",
    "UNKNOWN_CHALLENGE_KEY",
];
const BAD_REQUEST: &[&str] = &["INVALID_REQUEST"];

/// Classifies an answer by its FlinksCode (if known) and else its HTTP status.
pub fn classify(http_status: u16, flinks_code: Option<&str>) -> Classification {
    if let Some(kind) = flinks_code.and_then(classify_code) {
        return kind;
    }
    match http_status {
        200 => Classification::Success,
        202 => Classification::Pending,
        203 => Classification::NeedsUser,
        408 | 429 | 500..=599 => Classification::Transient,
        _ => Classification::BadRequest,
    }
}

/// The canonical spelling of a FlinksCode flinkq knows, for bounded metric
/// labels; `None` for a code it does not know.
pub fn known_code(code: &str) -> Option<&'static str> {
    let code = code.trim();
    [PENDING, TRANSIENT, SESSION_LOST, NEEDS_USER, BAD_REQUEST]
        .into_iter()
        .flatten()
        .find(|known| known.eq_ignore_ascii_case(code))
        .copied()
}

fn classify_code(code: &str) -> Option<Classification> {
    let code = code.trim();
    let table: [(&[&str], Classification); 5] = [
        (PENDING, Classification::Pending),
        (TRANSIENT, Classification::Transient),
        (SESSION_LOST, Classification::SessionLost),
        (NEEDS_USER, Classification::NeedsUser),
        (BAD_REQUEST, Classification::BadRequest),
    ];
    table
        .into_iter()
        .find(|(codes, _)| codes.iter().any(|known| known.eq_ignore_ascii_case(code)))
        .map(|(_, kind)| kind)
}

#[cfg(test)]
mod tests {
    use super::Classification::*;
    use super::*;

    /// DESIGN.md's classification table, one row per case.
    #[test]
    fn every_row_of_the_design_table() {
        let rows: &[(u16, Option<&str>, Classification)] = &[
            // pending
            (202, Some("OPERATION_PENDING"), Pending),
            (202, Some("OPERATION_DISPATCHED"), Pending),
            (202, None, Pending),
            // transient, by code
            (401, Some("RETRY_LATER"), Transient),
            (429, Some("TOO_MANY_REQUESTS"), Transient),
            // Flinks sends its rate limit as a 401: the code decides
            (401, Some("TOO_MANY_REQUESTS"), Transient),
            (400, Some("CARD_IN_USE"), Transient),
            (400, Some("CONCURRENT_SESSION"), Transient),
            (500, Some("AGGREGATION_ERROR"), Transient),
            (400, Some("DISABLED_INSTITUTION"), Transient),
            // transient, by status
            (500, None, Transient),
            (502, None, Transient),
            (503, Some("SOMETHING_NEW"), Transient),
            (599, None, Transient),
            (408, None, Transient),
            (429, None, Transient),
            // session lost
            (400, Some("SESSION_NONEXISTENT"), SessionLost),
            (401, Some("SESSION_EXPIRED"), SessionLost),
            // needs the user
            (203, None, NeedsUser),
            (203, Some("SECURITY_CHALLENGE"), NeedsUser),
            (401, Some("INVALID_LOGIN"), NeedsUser),
            (401, Some("DISABLED_LOGIN"), NeedsUser),
            (401, Some("NEW_ACCOUNT"), NeedsUser),
            (403, Some("ACCESS_DENIED"), NeedsUser),
            (401, Some("UNAUTHORIZED"), NeedsUser),
            (401, Some("INVALID_USERNAME"), NeedsUser),
            (401, Some("INVALID_PASSWORD"), NeedsUser),
            (401, Some("INVALID_SECURITY_RESPONSE"), NeedsUser),
            (401, Some("QUESTION_NOT_FOUND"), NeedsUser),
            (401, Some("UNKNOWN_CHALLENGE_KEY"), NeedsUser),
            // bad request
            (400, Some("INVALID_REQUEST"), BadRequest),
            (400, None, BadRequest),
            (401, None, BadRequest),
            (404, None, BadRequest),
            (409, Some("WHATEVER"), BadRequest),
            (204, None, BadRequest),
            (302, None, BadRequest),
            (301, None, BadRequest),
            (307, Some("SESSION_EXPIRED"), SessionLost),
            // success
            (200, None, Success),
            (200, Some("NOT_A_KNOWN_CODE"), Success),
        ];
        for &(status, code, expected) in rows {
            assert_eq!(classify(status, code), expected, "HTTP {status} {code:?}");
        }
    }

    #[test]
    fn known_codes_are_canonical() {
        assert_eq!(known_code(" session_expired "), Some("SESSION_EXPIRED"));
        assert_eq!(known_code("MADE_UP"), None);
    }

    #[test]
    fn code_wins_over_status() {
        // A 200 that says pending is pending; a 500 that says the login is
        // invalid needs the user, not a retry.
        assert_eq!(classify(200, Some("OPERATION_PENDING")), Pending);
        assert_eq!(classify(500, Some("INVALID_LOGIN")), NeedsUser);
        assert_eq!(classify(401, Some("retry_later")), Transient);
    }
}
