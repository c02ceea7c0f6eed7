//! Hostile answers: what a compromised or broken provider could send, to
//! prove the worker trusts none of it — redirects to other origins, bodies
//! of hundreds of MB, bodies that stall after the headers, envelopes of the
//! wrong types, invalid UTF-8 in a 200 and `Retry-After` as an HTTP-date.
//!
//! Huge and stalled bodies are streams: the simulator allocates none of
//! what it sends.

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_TYPE, DATE, LOCATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use futures::StreamExt;
use serde_json::json;

use super::config::Fault;
use super::payload::investments_payload;

/// A hostile answer, decided under the simulator's lock and sent after.
#[derive(Debug, Clone, PartialEq)]
pub enum HostileAnswer {
    /// A 3xx to `location`.
    Redirect {
        /// HTTP status.
        status: u16,
        /// `Location`.
        location: String,
    },
    /// `bytes` of body, streamed.
    Huge {
        /// HTTP status.
        status: u16,
        /// Body size.
        bytes: u64,
    },
    /// Headers, then nothing.
    Stalled,
    /// A body as given, not necessarily UTF-8 or JSON.
    Raw {
        /// HTTP status.
        status: u16,
        /// The bytes sent.
        body: Vec<u8>,
    },
    /// A JSON body with `Retry-After` and `Date` headers as given.
    RetryAt {
        /// HTTP status.
        status: u16,
        /// The body.
        body: serde_json::Value,
        /// `Date`.
        date: String,
        /// `Retry-After`.
        retry_after: String,
    },
}

/// The chunk huge bodies are made of: whitespace, so a 200 padded with it
/// stays valid JSON.
static PADDING: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// Marks where [`HostileAnswer::of`] puts invalid UTF-8 in a payload.
const INVALID_UTF8_MARK: &str = "@@INVALID-UTF-8@@";

impl HostileAnswer {
    /// The answer a hostile `fault` gives now. Not a hostile fault: a 500.
    pub fn of(fault: Fault, request_id: Option<&str>) -> HostileAnswer {
        match fault {
            Fault::Redirect { status, location } => HostileAnswer::Redirect { status, location },
            Fault::HugeBody { status, megabytes } => HostileAnswer::Huge {
                status,
                bytes: u64::from(megabytes) * 1_000_000,
            },
            Fault::StalledBody => HostileAnswer::Stalled,
            Fault::MistypedEnvelope { status, code } => HostileAnswer::Raw {
                status,
                body: json!({
                    "HttpStatusCode": status,
                    "FlinksCode": code,
                    "Message": {"Text": "Injected mistyped envelope", "Details": [1, 2, 3]},
                    "RequestId": 12345,
                })
                .to_string()
                .into_bytes(),
            },
            Fault::InvalidUtf8 => {
                let mut payload = investments_payload(
                    "00000000-0000-0000-0000-000000000000",
                    request_id.unwrap_or(""),
                );
                payload["Comment"] = json!(INVALID_UTF8_MARK);
                // 0xff and 0xfe never occur in UTF-8
                let text = payload.to_string();
                let body = match text.split_once(INVALID_UTF8_MARK) {
                    Some((before, after)) => {
                        [before.as_bytes(), b"a\xff\xfez", after.as_bytes()].concat()
                    }
                    None => text.into_bytes(),
                };
                HostileAnswer::Raw { status: 200, body }
            }
            Fault::RetryAfterDate {
                status,
                code,
                after_secs,
            } => {
                // One clock reading for both headers: their difference is
                // exactly `after_secs`, whatever the second's fraction.
                let now = SystemTime::now();
                HostileAnswer::RetryAt {
                    status,
                    body: json!({
                        "HttpStatusCode": status,
                        "FlinksCode": code,
                        "Message": "Injected fault with a Retry-After date",
                        "RequestId": request_id,
                    }),
                    date: httpdate::fmt_http_date(now),
                    retry_after: httpdate::fmt_http_date(now + Duration::from_secs(after_secs)),
                }
            }
            other => HostileAnswer::Raw {
                status: 500,
                body: format!("not a hostile fault: {other:?}").into_bytes(),
            },
        }
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response {
        let code = |status: u16| StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        match self {
            HostileAnswer::Redirect { status, location } => {
                let mut response = (
                    code(status),
                    Json(json!({"HttpStatusCode": status, "Message": "Moved"})),
                )
                    .into_response();
                if let Ok(location) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            HostileAnswer::Huge { status, bytes } => {
                let (head, tail, content_type): (&[u8], &[u8], _) = if status == 200 {
                    (
                        b"{\"HttpStatusCode\":200,\"Investments\":[",
                        b"]}",
                        "application/json",
                    )
                } else {
                    (b"<html><body>", b"</body></html>", "text/html")
                };
                let padding = bytes.saturating_sub((head.len() + tail.len()) as u64);
                (
                    code(status),
                    [(CONTENT_TYPE, content_type)],
                    Body::from_stream(huge_stream(head, padding, tail)),
                )
                    .into_response()
            }
            HostileAnswer::Stalled => {
                let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
                (
                    StatusCode::OK,
                    [(CONTENT_TYPE, "application/json")],
                    Body::from_stream(never),
                )
                    .into_response()
            }
            HostileAnswer::Raw { status, body } => {
                (code(status), [(CONTENT_TYPE, "application/json")], body).into_response()
            }
            HostileAnswer::RetryAt {
                status,
                body,
                date,
                retry_after,
            } => {
                let mut response = (code(status), Json(body)).into_response();
                let headers = response.headers_mut();
                for (name, value) in [(DATE, date), (RETRY_AFTER, retry_after)] {
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        headers.insert(name, value);
                    }
                }
                response
            }
        }
    }
}

/// `head`, `padding` bytes of [`PADDING`], `tail`: every chunk borrowed from
/// statics, so a 100 MB body costs the simulator nothing.
fn huge_stream(
    head: &'static [u8],
    padding: u64,
    tail: &'static [u8],
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunk = PADDING.len() as u64;
    let full = padding / chunk;
    let rest = (padding % chunk) as usize;
    futures::stream::once(async move { Bytes::from_static(head) })
        .chain(futures::stream::iter(0..full).map(|_| Bytes::from_static(&PADDING)))
        .chain(futures::stream::once(async move {
            Bytes::from_static(&PADDING[..rest])
        }))
        .chain(futures::stream::once(
            async move { Bytes::from_static(tail) },
        ))
        .map(Ok)
}
