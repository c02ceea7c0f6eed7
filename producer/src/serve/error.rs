//! `ServeError`: everything `flinkq serve` can fail at, from refusing to
//! start to one refused request, each mapped to an HTTP status and a JSON
//! body `{"error": "what failed and what to do"}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flinkq_shared::store::{BadCursor, StoreError};
use flinkq_shared::{Product, UnknownProduct};
use serde::Serialize;

use crate::error::{CliError, exit};
use crate::input::InvalidLine;

/// A `flinkq serve` failure.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Listening beyond this host with every request let in.
    #[error(
        "refusing to listen on {addr}: it is not a loopback address and no token is set, so anyone who reaches it could enqueue, cancel and read payloads. Set FLINKQ_API_TOKEN (or FLINKQ_API_TOKEN_FILE), or listen on 127.0.0.1 (FLINKQ_SERVE_ADDR)"
    )]
    OpenToTheNetwork {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// A token file cannot be read.
    #[error("cannot read {var} {path}: {source}; check the path and its permissions")]
    TokenFile {
        /// The variable naming it.
        var: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A token is empty (or only whitespace).
    #[error("{var} is empty: set a long random token (e.g. `openssl rand -hex 32`)")]
    EmptyToken {
        /// The variable.
        var: &'static str,
    },
    /// The two tokens are the same, so the read token would grant everything.
    #[error(
        "FLINKQ_API_READ_TOKEN is the same as FLINKQ_API_TOKEN: a read-only token must differ from the full one"
    )]
    SameTokens,
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}; pick another FLINKQ_SERVE_ADDR")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server loop failed.
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),

    /// No or an unknown bearer token.
    #[error(
        "missing or invalid token: send Authorization: Bearer <FLINKQ_API_TOKEN or FLINKQ_API_READ_TOKEN>"
    )]
    Unauthorized,
    /// A read-only token on an action or a payload.
    #[error("the read-only token cannot {0}: use the full token (FLINKQ_API_TOKEN)")]
    Forbidden(&'static str),
    /// A console form without this session's CSRF token.
    #[error(
        "this form is out of date or did not come from this console (CSRF token missing or wrong): reload the page and submit it again"
    )]
    BadCsrf,
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The body is over the limit.
    #[error(
        "the request body is larger than {limit} bytes (FLINKQ_SERVE_MAX_BODY): split the logins into several requests to the same batch (enqueue is idempotent per batch)"
    )]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Not JSON.
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// Malformed request (JSON syntax, a bad header or query).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Invalid loginIds in a list; nothing was done.
    #[error(
        "{count} invalid loginId(s), nothing was done: {}{}. Fix or remove them and send the request again",
        listed.iter().map(|line| format!("{}: {}", line.location, line.reason)).collect::<Vec<_>>().join("; "),
        if *count > listed.len() as u64 { format!("; and {} more", *count - listed.len() as u64) } else { String::new() }
    )]
    InvalidLogins {
        /// How many.
        count: u64,
        /// The first ones, with their index.
        listed: Vec<InvalidLine>,
    },
    /// A product name that is not in the table.
    #[error("{0}")]
    UnknownProduct(#[from] UnknownProduct),
    /// A `Last-Event-ID` that is not one of ours.
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    /// Every event stream slot is taken.
    #[error(
        "too many open event streams ({0}, FLINKQ_SERVE_MAX_STREAMS): close one, or retry in a few seconds"
    )]
    TooManyStreams(usize),
    /// Redis stopped answering part-way through an enqueue.
    #[error(
        "enqueue interrupted after {confirmed} confirmed login(s): {source}. Send the same request again once Redis answers: logins already in the batch are not enqueued twice"
    )]
    EnqueueInterrupted {
        /// Logins whose round trip Redis answered.
        confirmed: u64,
        /// Why.
        source: StoreError,
    },
    /// Redis failed.
    #[error("{0}; retry once Redis answers")]
    Store(#[from] StoreError),
    /// A CLI-level failure shared with the commands (no result, a result
    /// file out of reach, a spool error).
    #[error(transparent)]
    Cli(#[from] CliError),
}

impl ServeError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::Unauthorized => StatusCode::UNAUTHORIZED,
            ServeError::Forbidden(_) | ServeError::BadCsrf => StatusCode::FORBIDDEN,
            ServeError::NotFound(_) => StatusCode::NOT_FOUND,
            ServeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServeError::BadRequest(_) | ServeError::BadCursor(_) => StatusCode::BAD_REQUEST,
            ServeError::Invalid(_)
            | ServeError::InvalidLogins { .. }
            | ServeError::UnknownProduct(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServeError::TooManyStreams(_)
            | ServeError::Store(_)
            | ServeError::EnqueueInterrupted { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::Cli(error) => match error.exit_code() {
                exit::NOT_FOUND => StatusCode::NOT_FOUND,
                exit::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ServeError::OpenToTheNetwork { .. }
            | ServeError::TokenFile { .. }
            | ServeError::EmptyToken { .. }
            | ServeError::SameTokens
            | ServeError::Bind { .. }
            | ServeError::Serve(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The exit code when `flinkq serve` cannot start or stops on it.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::OpenToTheNetwork { .. }
            | ServeError::EmptyToken { .. }
            | ServeError::SameTokens => exit::USAGE,
            ServeError::TokenFile { .. } => exit::NO_INPUT,
            ServeError::Bind { .. } => exit::UNAVAILABLE,
            _ => 70,
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What failed and what to do.
    pub error: String,
    /// For invalid loginIds: the first ones (`logins[<index>]`) and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<Vec<InvalidItem>>,
    /// For an unknown product: the products there are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_products: Option<Vec<String>>,
}

/// One refused element of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvalidItem {
    /// Where: `logins[3]` (0-based).
    pub at: String,
    /// Why.
    pub reason: String,
}

impl ErrorBody {
    /// Just a message.
    pub fn message(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            invalid: None,
            known_products: None,
        }
    }
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // the message names what failed; tokens never reach an error
            tracing::warn!(%status, "{self}");
        }
        let mut body = ErrorBody::message(self.to_string());
        match &self {
            ServeError::InvalidLogins { listed, .. } => {
                body.invalid = Some(
                    listed
                        .iter()
                        .map(|line| InvalidItem {
                            at: line.location.clone(),
                            reason: line.reason.clone(),
                        })
                        .collect(),
                );
            }
            ServeError::UnknownProduct(_) => {
                body.known_products = Some(Product::all().map(|p| p.as_str().into()).collect());
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl ServeError {
    /// A refused JSON body, by what axum found wrong with it.
    pub fn from_json(rejection: JsonRejection, limit: usize) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ServeError::PayloadTooLarge { limit },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ServeError::UnsupportedMediaType,
            StatusCode::UNPROCESSABLE_ENTITY => ServeError::Invalid(format!(
                "{}: see the request schema in /api/v1/openapi.json",
                rejection.body_text()
            )),
            _ => ServeError::BadRequest(format!(
                "{}: send one JSON object (see /api/v1/openapi.json)",
                rejection.body_text()
            )),
        }
    }
}
