//! `FlinksClient`: Authorize and every product's data calls, each answer classified
//! (FlinksCode first, then HTTP status) into a state-machine [`Outcome`].
//!
//! Nothing in an answer is trusted: redirects are never followed (the auth
//! key must not reach another origin), error bodies are read only up to
//! [`ERROR_BODY_CAP`], and a 200 payload streams into the caller's target
//! under the configured limit and counts only as whole, UTF-8, JSON of the
//! payload's shape.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flinkq_shared::product::{Method, Stage};
use flinkq_shared::{Classification, LocalCode, LoginId, Outcome, Product, StepError, classify};
use http::StatusCode;
use http::header::LOCATION;
use serde::Serialize;
use url::Url;

use super::bodies::{AuthorizeRequest, Envelope, PayloadCheck, call_body};
use super::endpoints::FlinksUrls;
use super::payload::{PayloadError, PayloadTarget, read_capped, stream_payload};
use super::retry_after::retry_after;
use super::transport::{Answer, Transport, TransportBuildError, TransportError};
use crate::events::{Endpoint, Event, EventSink};
use crate::secret::Secret;

/// Where Flinks is, and what flinkq accepts from it.
#[derive(Debug, Clone)]
pub struct FlinksEndpoints {
    /// Where each call goes.
    pub urls: FlinksUrls,
    /// Sent as `flinks-auth-key` when set.
    pub auth_key: Option<Secret>,
    /// Timeout of one call, reading the body included.
    pub timeout: Duration,
    /// Largest 200 payload taken (FLINKQ_MAX_PAYLOAD), in bytes.
    pub max_payload: u64,
}

/// The answer of a product's data call.
#[derive(Debug)]
pub enum DataAnswer {
    /// HTTP 200 with a payload, now whole in the caller's target and checked:
    /// UTF-8 JSON whose stage payload key has the stage's shape.
    Ready,
    /// Anything else, as the state machine sees it.
    NotReady(Outcome),
}

/// A Flinks API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FlinksClient {
    http: Transport,
    endpoints: FlinksEndpoints,
    events: Arc<dyn EventSink>,
}

/// The longest message kept from an answer body, so a huge HTML error page
/// does not end up in Redis.
const MAX_MESSAGE: usize = 300;

/// The most read of a body that is not a 200 payload (error pages, 202s,
/// Authorize answers): far more than any real one, and only
/// [`MAX_MESSAGE`] of it is kept anyway. The rest is never read.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

impl FlinksClient {
    /// Builds the client (rustls, JSON headers, the auth key if any, the
    /// environment's proxy if any). Redirects are never followed: one would
    /// resend the auth key, possibly to another origin, so a 3xx is an
    /// answer like any other, and a failed step.
    pub fn new(
        endpoints: FlinksEndpoints,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, TransportBuildError> {
        let http = Transport::new(endpoints.auth_key.as_ref(), endpoints.timeout)?;
        Ok(FlinksClient {
            http,
            endpoints,
            events,
        })
    }

    /// `POST /Authorize` on `product`'s authorize host: a session, or why not.
    pub async fn authorize(&self, product: Product, login: &LoginId) -> Outcome {
        let started = Instant::now();
        let login = login.to_string();
        let body = AuthorizeRequest {
            login_id: &login,
            most_recent_cached: true,
        };
        let url = self.endpoints.urls.authorize(product);
        let (outcome, report) = match self.send(Method::Post, url, Some(&body)).await {
            Ok(response) => self.authorize_answer(response).await,
            Err(outcome) => {
                let report = Report::local(&outcome);
                (outcome, report)
            }
        };
        self.report(product, Endpoint::AUTHORIZE, started, report);
        outcome
    }

    async fn authorize_answer(&self, response: Answer) -> (Outcome, Report) {
        let answer = match SmallAnswer::read(response).await {
            Ok(answer) => answer,
            Err(refused) => return refused,
        };
        let report = answer.report();
        let SmallAnswer {
            status,
            after,
            bytes,
            truncated,
            envelope,
        } = answer;
        let outcome = match classify(status.as_u16(), envelope.flinks_code.as_deref()) {
            Classification::Success => match envelope.request_id {
                Some(request_id) => Outcome::Authorized { request_id },
                None => failed(
                    Classification::BadRequest,
                    LocalCode::BadBody.as_str(),
                    Some(status),
                    if truncated {
                        format!("Authorize answered 200 with a body over {ERROR_BODY_CAP} bytes")
                    } else {
                        "Authorize answered 200 without a RequestId".into()
                    },
                    None,
                ),
            },
            kind => other(kind, status, envelope, &bytes, after),
        };
        (outcome, report)
    }

    /// A data call of `product`'s `stage` within a session: the stage's
    /// first call, or its poll form once the stage was `accepted` (answered
    /// 202). A 200's payload streams into `target` and is checked against
    /// the stage's payload key and shape; on any other answer `target` may
    /// hold a part of a body, which the caller discards.
    pub async fn data_call<T: PayloadTarget>(
        &self,
        product: Product,
        stage: &'static Stage,
        accepted: bool,
        request_id: &str,
        login: &LoginId,
        target: &mut T,
    ) -> DataAnswer {
        let started = Instant::now();
        let call = stage.call(accepted);
        let url = self.endpoints.urls.url(call, login, request_id);
        let body = match call.method {
            Method::Post => Some(call_body(call, login, request_id)),
            Method::Get => None,
        };
        let (key, shape) = stage.payload;
        let check = PayloadCheck { key, shape };
        let (answer, report) = match self.send(call.method, url, body.as_ref()).await {
            Ok(response) if response.status() == StatusCode::OK => {
                self.payload_answer(call.name, check, response, target)
                    .await
            }
            Ok(response) => {
                let (outcome, report) = self.not_ready_answer(response).await;
                (DataAnswer::NotReady(outcome), report)
            }
            Err(outcome) => {
                let report = Report::local(&outcome);
                (DataAnswer::NotReady(outcome), report)
            }
        };
        self.report(product, Endpoint::of(call), started, report);
        answer
    }

    /// A 200 from a data call: the payload, unless its own FlinksCode says
    /// otherwise (a 200 that says `OPERATION_PENDING` is pending).
    async fn payload_answer<T: PayloadTarget>(
        &self,
        call: &'static str,
        check: PayloadCheck,
        mut response: Answer,
        target: &mut T,
    ) -> (DataAnswer, Report) {
        let status = response.status();
        let after = retry_after(response.headers(), SystemTime::now());
        let limit = self.endpoints.max_payload;
        let fields = match stream_payload(&mut response, target, limit, check).await {
            Ok(fields) => fields,
            Err(error) => {
                let outcome = payload_failure(call, error, status);
                let report = Report::local(&outcome).with_status(status);
                return (DataAnswer::NotReady(outcome), report);
            }
        };
        let envelope = fields.envelope;
        let report = Report::status(status, envelope.flinks_code.clone());
        let answer = match classify(status.as_u16(), envelope.flinks_code.as_deref()) {
            Classification::Success => match fields.entries {
                Some(entries) => {
                    tracing::debug!(call, key = check.key, entries, "payload ready");
                    DataAnswer::Ready
                }
                None => DataAnswer::NotReady(bad_payload(
                    call,
                    status,
                    &format!("the `{}` {} is missing", check.key, check.shape.as_str()),
                )),
            },
            // the body was a small envelope after all, but never keep more
            // of it than any other answer
            kind => DataAnswer::NotReady(other(kind, status, envelope, b"", after)),
        };
        (answer, report)
    }

    async fn not_ready_answer(&self, response: Answer) -> (Outcome, Report) {
        match SmallAnswer::read(response).await {
            Ok(answer) => {
                let report = answer.report();
                let kind = classify(
                    answer.status.as_u16(),
                    answer.envelope.flinks_code.as_deref(),
                );
                let outcome = other(
                    kind,
                    answer.status,
                    answer.envelope,
                    &answer.bytes,
                    answer.after,
                );
                (outcome, report)
            }
            Err(refused) => refused,
        }
    }

    /// Sends one call (a POST with its JSON body, or a GET without one)
    /// and returns the answer's head; network failures come back as
    /// transient outcomes.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Answer, Outcome> {
        let (method, body) = match (method, body) {
            (Method::Post, Some(body)) => {
                // flinkq's own request types: serializing them cannot fail
                let body = serde_json::to_vec(body).map_err(|error| {
                    failed(
                        Classification::BadRequest,
                        LocalCode::Network.as_str(),
                        None,
                        truncate(format!("the request body could not be written: {error}")),
                        None,
                    )
                })?;
                (http::Method::POST, Some(body))
            }
            (Method::Post, None) => (http::Method::POST, Some(Vec::new())),
            (Method::Get, _) => (http::Method::GET, None),
        };
        self.http
            .send(method, &url, body)
            .await
            .map_err(network_failure)
    }

    fn report(&self, product: Product, endpoint: Endpoint, started: Instant, report: Report) {
        self.events.emit(Event::FlinksCall {
            product,
            endpoint,
            status: report.status,
            code: report.code.as_deref(),
            latency: started.elapsed(),
        });
    }
}

/// What one call reports to the metrics: the HTTP status if an answer
/// came, and its FlinksCode or flinkq's own code for the failure.
/// An answer that is not a payload (any Authorize answer, a non-200 poll),
/// read the one way: a redirect refused, `Retry-After` taken from the head,
/// at most [`ERROR_BODY_CAP`] bytes of the body, its envelope parsed once.
struct SmallAnswer {
    status: StatusCode,
    after: Option<Duration>,
    bytes: Vec<u8>,
    /// The body went on past the cap (the rest was never read).
    truncated: bool,
    envelope: Envelope,
}

impl SmallAnswer {
    /// Reads `response`; a redirect or a body that broke off comes back as
    /// the step's outcome, already reported.
    async fn read(mut response: Answer) -> Result<SmallAnswer, (Outcome, Report)> {
        let status = response.status();
        if let Some(outcome) = redirected(&response) {
            return Err((outcome, Report::status(status, None)));
        }
        let after = retry_after(response.headers(), SystemTime::now());
        let (bytes, truncated) = read_capped(&mut response, ERROR_BODY_CAP)
            .await
            .map_err(|error| (network_failure(error), Report::status(status, None)))?;
        let envelope = Envelope::read(&bytes);
        Ok(SmallAnswer {
            status,
            after,
            bytes,
            truncated,
            envelope,
        })
    }

    fn report(&self) -> Report {
        Report::status(self.status, self.envelope.flinks_code.clone())
    }
}

struct Report {
    status: Option<u16>,
    code: Option<String>,
}

impl Report {
    fn status(status: StatusCode, code: Option<String>) -> Report {
        Report {
            status: Some(status.as_u16()),
            code,
        }
    }

    fn local(outcome: &Outcome) -> Report {
        let code = match outcome {
            Outcome::Failed { error, .. } => Some(error.code.clone()),
            _ => None,
        };
        Report { status: None, code }
    }

    fn with_status(self, status: StatusCode) -> Report {
        Report {
            status: Some(status.as_u16()),
            ..self
        }
    }
}

/// A 3xx is never followed: the step fails as `HTTP_3xx`, for good (an
/// endpoint that moved is a configuration to fix, not a wait).
fn redirected(response: &Answer) -> Option<Outcome> {
    let status = response.status();
    if !status.is_redirection() {
        return None;
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    Some(failed(
        Classification::BadRequest,
        &format!("HTTP_{}", status.as_u16()),
        Some(status),
        truncate(format!(
            "Flinks answered a redirect to {location}; flinkq never follows redirects (the API key would go along): check the instance bases FLINKQ_FLINKS_URL and FLINKQ_WEALTH_URL, and the overrides FLINKQ_AUTHORIZE_URL and FLINKQ_INVESTMENTS_URL if set"
        )),
        None,
    ))
}

fn payload_failure(call: &str, error: PayloadError, status: StatusCode) -> Outcome {
    match error {
        PayloadError::TooLarge { limit } => failed(
            Classification::BadRequest,
            LocalCode::PayloadTooLarge.as_str(),
            Some(status),
            format!(
                "{call} answered 200 with a payload over {limit} bytes; raise FLINKQ_MAX_PAYLOAD to accept it"
            ),
            None,
        ),
        PayloadError::NotUtf8 { offset } => {
            bad_payload(call, status, &format!("invalid UTF-8 at byte {offset}"))
        }
        PayloadError::NotPayload(error) => bad_payload(call, status, &error.to_string()),
        PayloadError::Network(error) => network_failure(error),
        PayloadError::Write(message) => failed(
            Classification::Transient,
            LocalCode::ResultWrite.as_str(),
            None,
            truncate(format!("the payload could not be stored: {message}")),
            None,
        ),
    }
}

fn bad_payload(call: &str, status: StatusCode, why: &str) -> Outcome {
    failed(
        Classification::BadRequest,
        LocalCode::BadBody.as_str(),
        Some(status),
        truncate(format!(
            "{call} answered 200 with a body that is not a payload: {why}"
        )),
        None,
    )
}

fn other(
    kind: Classification,
    status: StatusCode,
    envelope: Envelope,
    bytes: &[u8],
    retry_after: Option<Duration>,
) -> Outcome {
    let kind = match kind {
        Classification::Pending => return Outcome::Pending,
        // callers hand over every answer but a usable 200; were one to
        // reach here, it could not be used: a bad request
        Classification::Success => Classification::BadRequest,
        kind => kind,
    };
    let code = envelope
        .flinks_code
        .unwrap_or_else(|| format!("HTTP_{}", status.as_u16()));
    let message = envelope.message.unwrap_or_else(|| {
        // only the head of a body is ever read; keep less than that
        let head = &bytes[..bytes.len().min(4 * MAX_MESSAGE)];
        let text = String::from_utf8_lossy(head);
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
    kind: Classification,
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
fn network_failure(error: TransportError) -> Outcome {
    let code = match error {
        TransportError::Timeout(_) => LocalCode::Timeout,
        TransportError::Connect(_) => LocalCode::Connect,
        TransportError::Body(_) => LocalCode::Body,
        TransportError::Network(_) | TransportError::Request(_) => LocalCode::Network,
    };
    // The message holds the URL at most (ours, with no secret), never a
    // header.
    failed(
        Classification::Transient,
        code.as_str(),
        None,
        truncate(error.to_string()),
        None,
    )
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
