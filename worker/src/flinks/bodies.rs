//! The typed JSON bodies flinkq sends to and reads from Flinks.

use serde::{Deserialize, Serialize};

/// `POST /Authorize` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuthorizeRequest<'a> {
    /// The login to open a session for.
    pub login_id: &'a str,
    /// Always true: serve the latest cached data.
    pub most_recent_cached: bool,
}

/// `POST /Investments` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentsRequest<'a> {
    /// The session.
    pub request_id: &'a str,
    /// The login of the session.
    pub login_id: &'a str,
    /// Always true.
    pub most_recent_cached: bool,
}

/// The envelope fields every Flinks answer may carry. Read leniently: any of
/// them may be missing, and unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    /// Machine-readable code, e.g. `OPERATION_PENDING`.
    pub flinks_code: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// The session id (Authorize answers).
    pub request_id: Option<String>,
}

/// What a 200 from /Investments must hold to count as a payload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentsPayload {
    /// One entry per institution (accounts, positions, transactions).
    pub investments: Vec<serde::de::IgnoredAny>,
}
