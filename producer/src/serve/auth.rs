//! Who may do what: the full token (everything, payloads included) and the
//! read-only token (no payloads, no actions), presented as `Authorization:
//! Bearer <token>` and compared in constant time.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use flinkq_shared::secret::{Secret, SecretSourceError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ServeError;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything: actions and payloads.
    Full,
    /// Reads without payloads.
    Read,
}

/// The configured tokens. `Debug` shows whether each is set, never a value.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    full: Option<Secret>,
    read: Option<Secret>,
}

impl Tokens {
    /// Tokens from a value or a file each (`…_FILE`: its content, one
    /// trailing newline or spaces trimmed, as secrets mounted by an
    /// orchestrator end).
    pub fn load(
        full: Option<&Secret>,
        full_file: Option<&Path>,
        read: Option<&Secret>,
        read_file: Option<&Path>,
    ) -> Result<Tokens, ServeError> {
        let one = |value: Option<&Secret>,
                   file: Option<&Path>,
                   var: &'static str,
                   file_var: &'static str|
         -> Result<Option<Secret>, ServeError> {
            Secret::from_value_or_file(value, file).map_err(|error| match error {
                SecretSourceError::Read { path, source } => ServeError::TokenFile {
                    var: file_var,
                    path,
                    source,
                },
                SecretSourceError::Empty => ServeError::EmptyToken { var },
            })
        };
        let tokens = Tokens {
            full: one(full, full_file, "FLINKQ_API_TOKEN", "FLINKQ_API_TOKEN_FILE")?,
            read: one(
                read,
                read_file,
                "FLINKQ_API_READ_TOKEN",
                "FLINKQ_API_READ_TOKEN_FILE",
            )?,
        };
        if let (Some(full), Some(read)) = (&tokens.full, &tokens.read)
            && full == read
        {
            return Err(ServeError::SameTokens);
        }
        Ok(tokens)
    }

    /// Is any token set? Without one, every request has full access (and
    /// the server only listens on loopback).
    pub fn configured(&self) -> bool {
        self.full.is_some() || self.read.is_some()
    }

    /// What the `Authorization` header value grants.
    pub fn access(&self, authorization: Option<&[u8]>) -> Result<Access, ServeError> {
        if !self.configured() {
            return Ok(Access::Full);
        }
        let presented = authorization
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .map(|token| token.trim_ascii())
            .filter(|token| !token.is_empty())
            .ok_or(ServeError::Unauthorized)?;
        // both sides are hashed first, so the comparison takes the same time
        // whatever the lengths and wherever the first difference is
        let presented = Sha256::digest(presented);
        let matches = |token: &Option<Secret>| {
            token.as_ref().is_some_and(|token| {
                bool::from(Sha256::digest(token.expose().as_bytes()).ct_eq(&presented))
            })
        };
        // evaluate both, not short-circuited: timing says nothing of which
        let (full, read) = (matches(&self.full), matches(&self.read));
        match (full, read) {
            (true, _) => Ok(Access::Full),
            (false, true) => Ok(Access::Read),
            (false, false) => Err(ServeError::Unauthorized),
        }
    }
}

/// A request with any valid token: reads without payloads.
#[derive(Debug, Clone, Copy)]
pub struct Reader;

/// A request with the full token: actions and payloads.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

/// The bearer token's access; without one, a console session's for a GET
/// (the console's live updates read the API; anything that acts needs the
/// bearer token, so a cookie alone never changes anything through the API).
fn access_of(parts: &Parts, state: &AppState) -> Result<Access, ServeError> {
    let header = parts.headers.get(AUTHORIZATION).map(|v| v.as_bytes());
    if header.is_none()
        && parts.method == Method::GET
        && let Some(session) = state.sessions.of(&parts.headers)
    {
        return Ok(session.access);
    }
    state.tokens.access(header)
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServeError> {
        access_of(parts, state).map(|_| Reader)
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ServeError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ServeError> {
        match access_of(parts, state)? {
            Access::Full => Ok(Operator),
            Access::Read => Err(ServeError::Forbidden(
                if parts.uri.path().contains("/results/") {
                    "read payloads"
                } else {
                    "act (enqueue, retry, purge, cancel)"
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::load(
            Some(&Secret::new("full-token")),
            None,
            Some(&Secret::new("read-token\n")),
            None,
        )
        .expect("tokens")
    }

    #[test]
    fn a_token_grants_its_access_and_nothing_else_does() {
        let tokens = tokens();
        assert_eq!(
            tokens.access(Some(b"Bearer full-token")).ok(),
            Some(Access::Full)
        );
        assert_eq!(
            tokens.access(Some(b"Bearer read-token")).ok(),
            Some(Access::Read)
        );
        for bad in [
            &b"Bearer full-toke"[..],
            b"Bearer full-token-",
            b"Bearer ",
            b"full-token",
            b"Basic full-token",
        ] {
            assert!(tokens.access(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(tokens.access(None).is_err());
        assert_eq!(Tokens::default().access(None).ok(), Some(Access::Full));
    }

    #[test]
    fn tokens_never_show_in_debug_and_must_differ() {
        let text = format!("{:?}", tokens());
        assert!(
            !text.contains("full-token") && !text.contains("read-token"),
            "{text}"
        );
        let same = Secret::new("x");
        assert!(matches!(
            Tokens::load(Some(&same), None, Some(&same), None),
            Err(ServeError::SameTokens)
        ));
        assert!(matches!(
            Tokens::load(Some(&Secret::new(" \n")), None, None, None),
            Err(ServeError::EmptyToken { .. })
        ));
    }
}
