//! `FlinksClient`: Authorize and Investments calls, each answer classified
//! (FlinksCode first, then HTTP status) into a state-machine [`Outcome`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use flinkq_shared::{AnswerKind, FailureKind, LoginId, Outcome, StepError, classify};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;

use super::bodies::{AuthorizeRequest, Envelope, InvestmentsPayload, InvestmentsRequest};
use crate::events::{Event, EventSink};
use crate::secret::Secret;

/// Where Flinks is.
#[derive(Debug, Clone)]
pub struct FlinksEndpoints {
    /// Full Authorize URL.
    pub authorize: Url,
    /// Full Investments URL.
    pub investments: Url,
    /// Sent as `flinks-auth-key` when set.
    pub auth_key: Option<Secret>,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// The answer of an /Investments call.
#[derive(Debug)]
pub enum InvestmentsAnswer {
    /// HTTP 200 with a payload: the raw body, validated as JSON.
    Ready(Vec<u8>),
    /// Anything else, as the state machine sees it.
    NotReady(Outcome),
}

/// A Flinks API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FlinksClient {
    http: reqwest::Client,
    endpoints: FlinksEndpoints,
    events: Arc<dyn EventSink>,
}

/// The longest message kept from an answer body, so a huge HTML error page
/// does not end up in Redis.
const MAX_MESSAGE: usize = 300;

impl FlinksClient {
    /// Builds the client (rustls, JSON headers, the auth key if any).
    pub fn new(
        endpoints: FlinksEndpoints,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = &endpoints.auth_key
            && let Ok(mut value) = HeaderValue::from_str(key.expose())
        {
            value.set_sensitive(true);
            headers.insert("flinks-auth-key", value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(endpoints.timeout)
            .connect_timeout(endpoints.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(FlinksClient {
            http,
            endpoints,
            events,
        })
    }

    /// `POST /Authorize`: a session, or why not.
    pub async fn authorize(&self, login: &LoginId) -> Outcome {
        let login = login.to_string();
        let body = AuthorizeRequest {
            login_id: &login,
            most_recent_cached: true,
        };
        let RawAnswer {
            status,
            retry_after,
            bytes,
            envelope,
        } = match self
            .post("authorize", &self.endpoints.authorize, &body)
            .await
        {
            Ok(answer) => answer,
            Err(outcome) => return outcome,
        };
        match classify(status.as_u16(), envelope.flinks_code.as_deref()) {
            AnswerKind::Success => match envelope.request_id.filter(|id| !id.trim().is_empty()) {
                Some(request_id) => Outcome::Authorized { request_id },
                None => failed(
                    FailureKind::BadRequest,
                    "BAD_BODY",
                    Some(status),
                    "Authorize answered 200 without a RequestId".into(),
                    None,
                ),
            },
            kind => other(kind, status, envelope, &bytes, retry_after),
        }
    }

    /// `POST /Investments` within a session.
    pub async fn investments(&self, request_id: &str, login: &LoginId) -> InvestmentsAnswer {
        let login = login.to_string();
        let body = InvestmentsRequest {
            request_id,
            login_id: &login,
            most_recent_cached: true,
        };
        let RawAnswer {
            status,
            retry_after,
            bytes,
            envelope,
        } = match self
            .post("investments", &self.endpoints.investments, &body)
            .await
        {
            Ok(answer) => answer,
            Err(outcome) => return InvestmentsAnswer::NotReady(outcome),
        };
        match classify(status.as_u16(), envelope.flinks_code.as_deref()) {
            AnswerKind::Success => match serde_json::from_slice::<InvestmentsPayload>(&bytes) {
                Ok(payload) => {
                    tracing::debug!(
                        institutions = payload.investments.len(),
                        "investments ready"
                    );
                    InvestmentsAnswer::Ready(bytes)
                }
                Err(e) => InvestmentsAnswer::NotReady(failed(
                    FailureKind::BadRequest,
                    "BAD_BODY",
                    Some(status),
                    format!(
                        "Investments answered 200 with a body that is not an investments payload: {e}"
                    ),
                    None,
                )),
            },
            kind => InvestmentsAnswer::NotReady(other(kind, status, envelope, &bytes, retry_after)),
        }
    }

    /// Sends one POST; network failures come back as transient outcomes.
    /// Sends one POST, reads the answer and its envelope, and reports the
    /// call; network failures come back as transient outcomes.
    async fn post<B: Serialize>(
        &self,
        endpoint: &'static str,
        url: &Url,
        body: &B,
    ) -> Result<RawAnswer, Outcome> {
        let started = Instant::now();
        let answer = self.send(url, body).await;
        let (status, code) = match &answer {
            Ok(raw) => (
                Some(raw.status.as_u16()),
                raw.envelope.flinks_code.as_deref(),
            ),
            Err(Outcome::Failed { error, .. }) => (None, Some(error.code.as_str())),
            Err(_) => (None, None),
        };
        self.events.emit(Event::FlinksCall {
            endpoint,
            status,
            code,
            latency: started.elapsed(),
        });
        answer
    }

    async fn send<B: Serialize>(&self, url: &Url, body: &B) -> Result<RawAnswer, Outcome> {
        let response = self
            .http
            .post(url.clone())
            .json(body)
            .send()
            .await
            .map_err(network_failure)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(network_failure)?.to_vec();
        let envelope = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(RawAnswer {
            status,
            retry_after,
            bytes,
            envelope,
        })
    }
}

/// An answer as it came, with its envelope read once.
struct RawAnswer {
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: Vec<u8>,
    envelope: Envelope,
}

fn other(
    kind: AnswerKind,
    status: StatusCode,
    envelope: Envelope,
    bytes: &[u8],
    retry_after: Option<Duration>,
) -> Outcome {
    let kind = match kind {
        AnswerKind::Pending => return Outcome::Pending,
        AnswerKind::Transient => FailureKind::Transient,
        AnswerKind::SessionLost => FailureKind::SessionLost,
        AnswerKind::NeedsUser => FailureKind::NeedsUser,
        AnswerKind::BadRequest | AnswerKind::Success => FailureKind::BadRequest,
    };
    let code = envelope
        .flinks_code
        .unwrap_or_else(|| format!("HTTP_{}", status.as_u16()));
    let message = envelope.message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            text.to_owned()
        }
    });
    failed(kind, &code, Some(status), truncate(message), retry_after)
}

fn failed(
    kind: FailureKind,
    code: &str,
    status: Option<StatusCode>,
    message: String,
    retry_after: Option<Duration>,
) -> Outcome {
    Outcome::Failed {
        kind,
        error: StepError {
            code: code.to_owned(),
            http_status: status.map(|s| s.as_u16()),
            message,
        },
        retry_after,
    }
}

/// Timeouts, refused connections and resets: try again later.
fn network_failure(error: reqwest::Error) -> Outcome {
    let code = if error.is_timeout() {
        "TIMEOUT"
    } else if error.is_connect() {
        "CONNECT"
    } else if error.is_body() || error.is_decode() {
        "BODY"
    } else {
        "NETWORK"
    };
    // The URL is ours and holds no secret; the message has no headers.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let message = truncate(message);
    failed(FailureKind::Transient, code, None, message, None)
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}
