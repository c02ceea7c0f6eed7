//! Console sessions and CSRF tokens.
//!
//! Signing in with a token (the same two as the API) opens a session: a
//! random 256-bit id in an `HttpOnly; SameSite=Strict` cookie, mapped in
//! this process' memory to the access it grants and a random CSRF token.
//! The cookie never holds the token itself; the map is keyed by the
//! SHA-256 of the id, so a lookup's timing says nothing about a guessed id.
//! Sessions end at sign-out, after [`SESSION_TTL`], or when the process
//! stops (sign in again after a restart).
//!
//! The sign-in form itself is protected against login CSRF (a foreign site
//! signing a browser in under the attacker's token) by a signed double
//! submit: `GET /signin` sets a random nonce in an `HttpOnly;
//! SameSite=Strict` cookie scoped to `/signin` and puts the nonce's
//! HMAC-SHA256, under a key of this process, in a hidden field. A POST
//! without both, or whose field is not the HMAC of its cookie, opens no
//! session: a cross-site form sends no cookie, and a planted cookie has no
//! matching field without the key.
//!
//! `Secure` is not set: `flinkq serve` speaks plain HTTP and cannot tell
//! whether a TLS proxy is in front. Behind one, browsers still send the
//! cookie only to the same site (SameSite=Strict), and the proxy should be
//! the only way in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::serve::auth::Access;

/// The cookie's name.
pub const COOKIE_NAME: &str = "flinkq_session";

/// The sign-in form's pre-session cookie (login CSRF).
pub const SIGNIN_COOKIE: &str = "flinkq_signin";

/// How long a sign-in form stays usable.
const SIGNIN_TTL: Duration = Duration::from_secs(3600);

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions kept at once: past it, the oldest is dropped (a flood of
/// sign-ins cannot grow memory without bound).
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// What it may do.
    pub access: Access,
    /// Its CSRF token, sent in a hidden field of every form.
    pub csrf: String,
    opened: Instant,
}

impl Session {
    /// Is `presented` this session's CSRF token (compared in constant time)?
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let (a, b) = (
            Sha256::digest(self.csrf.as_bytes()),
            Sha256::digest(presented.as_bytes()),
        );
        bool::from(a.ct_eq(&b))
    }
}

/// The open sessions, and the key signing sign-in forms.
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    /// Random per process: a restart makes open sign-in forms stale
    /// (reload the page).
    signin_key: [u8; 32],
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            open: Mutex::default(),
            signin_key: rand::random(),
        }
    }
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the key
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session; returns the cookie value (the id).
    pub fn open(&self, access: Access) -> String {
        let id = random_hex();
        let session = Session {
            access,
            csrf: random_hex(),
            opened: Instant::now(),
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, s| s.opened.elapsed() < SESSION_TTL);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.opened).map(|(k, _)| *k)
        {
            open.remove(&oldest);
        }
        open.insert(key_of(&id), session);
        id
    }

    /// The session of a request's cookie, if it is open.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie_value(headers)?;
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&key_of(&id))
            .filter(|s| s.opened.elapsed() < SESSION_TTL)
            .cloned()
    }

    /// A new sign-in form's pair: the nonce for [`SIGNIN_COOKIE`] and the
    /// token for its hidden field.
    pub fn signin_pair(&self) -> (String, String) {
        let nonce = random_hex();
        let token = self.signin_token(&nonce);
        (nonce, token)
    }

    fn signin_token(&self, nonce: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.signin_key).expect("HMAC takes any key length");
        mac.update(nonce.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Does a sign-in POST carry the field token of its own form (its
    /// [`SIGNIN_COOKIE`] signed by this process)? Compared in constant time.
    pub fn signin_matches(&self, headers: &HeaderMap, presented: &str) -> bool {
        let Some(nonce) = cookie_named(headers, SIGNIN_COOKIE) else {
            return false;
        };
        let (a, b) = (
            Sha256::digest(self.signin_token(&nonce).as_bytes()),
            Sha256::digest(presented.as_bytes()),
        );
        bool::from(a.ct_eq(&b))
    }

    /// Ends the session of a request's cookie.
    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie_value(headers) {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.remove(&key_of(&id));
        }
    }
}

/// Our session cookie's value among a request's cookies.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE_NAME)
}

/// A cookie's value among a request's cookies.
fn cookie_named(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value opening a session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value of a sign-in form's nonce.
pub fn set_signin_cookie(nonce: &str) -> String {
    format!(
        "{SIGNIN_COOKIE}={nonce}; Path=/signin; HttpOnly; SameSite=Strict; Max-Age={}",
        SIGNIN_TTL.as_secs()
    )
}

/// The `Set-Cookie` value ending one.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_is_found_by_its_cookie_only_and_ends_at_sign_out() {
        let sessions = Sessions::default();
        let id = sessions.open(Access::Read);
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE_NAME}={id}")).expect("header"),
        );
        let session = sessions.of(&headers).expect("open");
        assert_eq!(session.access, Access::Read);
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("nope"));
        let mut wrong = HeaderMap::new();
        wrong.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={id}x")).expect("header"),
        );
        assert!(sessions.of(&wrong).is_none());
        sessions.close(&headers);
        assert!(sessions.of(&headers).is_none());
    }

    #[test]
    fn a_sign_in_form_token_matches_only_its_own_cookie_and_process() {
        let sessions = Sessions::default();
        let (nonce, token) = sessions.signin_pair();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{SIGNIN_COOKIE}={nonce}")).expect("header"),
        );
        assert!(sessions.signin_matches(&headers, &token));
        assert!(
            !sessions.signin_matches(&headers, &nonce),
            "the nonce is not the token"
        );
        assert!(
            !sessions.signin_matches(&HeaderMap::new(), &token),
            "no cookie"
        );
        let (_, other) = sessions.signin_pair();
        assert!(
            !sessions.signin_matches(&headers, &other),
            "another form's token"
        );
        assert!(
            !Sessions::default().signin_matches(&headers, &token),
            "another process' key"
        );
    }
}
