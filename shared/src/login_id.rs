//! `LoginId`: the Flinks login a job fetches, validated as a UUID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A Flinks `loginId`: a UUID, kept in its canonical lowercase hyphenated form
/// so the same login always maps to the same Redis keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoginId(Uuid);

/// Why a string is not a `LoginId`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginIdError {
    /// The input was empty (after trimming whitespace).
    #[error("empty loginId")]
    Empty,
    /// The input is not a UUID.
    #[error(
        "{input:?} is not a loginId: expected a UUID like 5e115eac-1209-4f19-641c-08d6d484e2fe"
    )]
    NotUuid {
        /// The offending input, truncated to 64 characters.
        input: String,
    },
}

impl LoginId {
    /// Parses a loginId, ignoring surrounding whitespace. Accepts only the
    /// hyphenated 36-character UUID form Flinks issues.
    pub fn parse(input: &str) -> Result<Self, LoginIdError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(LoginIdError::Empty);
        }
        let not_uuid = || LoginIdError::NotUuid {
            input: trimmed.chars().take(64).collect(),
        };
        if trimmed.len() != 36 {
            return Err(not_uuid());
        }
        Uuid::try_parse(trimmed)
            .map(LoginId)
            .map_err(|_| not_uuid())
    }

    /// A fresh random loginId (demo data, tests).
    pub fn random() -> Self {
        LoginId(Uuid::new_v4())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// Its 16 bytes (compact storage, e.g. a spool file).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// The login of 16 bytes written by [`LoginId::as_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        LoginId(Uuid::from_bytes(bytes))
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for LoginId {
    type Err = LoginIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LoginId::parse(s)
    }
}

impl TryFrom<String> for LoginId {
    type Error = LoginIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LoginId::parse(&s)
    }
}

impl From<LoginId> for String {
    fn from(id: LoginId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_and_whitespace() {
        let id = LoginId::parse("  5E115EAC-1209-4F19-641C-08D6D484E2FE\r\n").expect("valid");
        assert_eq!(id.to_string(), "5e115eac-1209-4f19-641c-08d6d484e2fe");
    }

    #[test]
    fn rejects_non_uuids_with_the_input() {
        assert_eq!(LoginId::parse("   "), Err(LoginIdError::Empty));
        let err = LoginId::parse("not-a-uuid").expect_err("invalid");
        assert!(err.to_string().contains("\"not-a-uuid\""), "{err}");
        // simple (unhyphenated) and braced forms are not what Flinks issues
        assert!(LoginId::parse("5e115eac12094f19641c08d6d484e2fe").is_err());
        assert!(LoginId::parse("{5e115eac-1209-4f19-641c-08d6d484e2fe}").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = LoginId::random();
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(serde_json::from_str::<LoginId>(&json).expect("parse"), id);
        assert!(serde_json::from_str::<LoginId>("\"nope\"").is_err());
    }
}
