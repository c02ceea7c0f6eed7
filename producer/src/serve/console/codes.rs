//! FlinksCodes (and flinkq's own codes) in plain words, for the people
//! who read the console rather than the Flinks documentation.

/// What a code means and what to do, in one sentence; a generic sentence
/// for a code this table does not know.
pub fn plain_words(code: &str) -> &'static str {
    match code.trim().to_ascii_uppercase().as_str() {
        "INVALID_LOGIN" | "INVALID_USERNAME" | "INVALID_PASSWORD" => {
            "The bank refused the saved credentials: the user must reconnect their account."
        }
        "DISABLED_LOGIN" => "The bank disabled this login: the user must reconnect their account.",
        "NEW_ACCOUNT" => "The bank wants the user to finish setting up their account first.",
        "ACCESS_DENIED" | "UNAUTHORIZED" => {
            "The bank denied access: the user must reconnect and grant access again."
        }
        "INVALID_SECURITY_RESPONSE" | "QUESTION_NOT_FOUND" | "UNKNOWN_CHALLENGE_KEY" => {
            "The bank asked a security question (MFA) that needs the user: they must reconnect."
        }
        "INVALID_REQUEST" => {
            "Flinks refused the request as malformed: check the loginId and product."
        }
        "RETRY_LATER" | "TOO_MANY_REQUESTS" => {
            "Flinks asked to slow down: retrying later usually works."
        }
        "AGGREGATION_ERROR" => {
            "The bank's site failed while Flinks read it: retrying later usually works."
        }
        "DISABLED_INSTITUTION" => "The bank is unavailable through Flinks for now: retry later.",
        "CARD_IN_USE" | "CONCURRENT_SESSION" => {
            "Another session was using this login at the same time: retry later."
        }
        "SESSION_NONEXISTENT" | "SESSION_EXPIRED" => {
            "The Flinks session expired before the data was ready: a retry starts a new one."
        }
        "POLL_TIMEOUT" | "AUTHORIZE_TIMEOUT" => {
            "Flinks did not have the data ready before the deadline: retry it."
        }
        "TIMEOUT" | "CONNECT" | "NETWORK" | "BODY" => {
            "Flinks could not be reached or did not answer in time: retry it."
        }
        "BAD_BODY" => {
            "Flinks answered with something that is not the expected JSON: retry, then report it."
        }
        "PAYLOAD_TOO_LARGE" => {
            "The data was larger than the configured limit (FLINKQ_MAX_PAYLOAD)."
        }
        "RESULT_WRITE" => {
            "The data arrived but could not be stored: check the result directory or Redis."
        }
        "POISON_PILL" => {
            "This job crashed workers repeatedly and was set aside: look at the worker logs."
        }
        _ => {
            "A code this console has no explanation for: see the message and Flinks' documentation."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_words;

    #[test]
    fn an_invalid_login_reads_as_reconnect() {
        assert!(plain_words("invalid_login").contains("reconnect their account"));
        assert!(plain_words("SOMETHING_NEW").contains("no explanation"));
    }
}
