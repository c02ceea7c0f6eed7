//! The batch webhook: each `batch_completed` event is POSTed to
//! `FLINKQ_BATCH_WEBHOOK`, so a pipeline can wait for its batch without
//! polling.
//!
//! Every worker configured with the webhook reads the `events` stream in
//! one consumer group, so each event goes to one worker; it is acknowledged
//! only after a 2xx answer. An event whose delivery failed (or whose worker
//! died) stays pending and is handed out again after [`RECLAIM_AFTER`].
//! Delivery is at-least-once: the `Idempotency-Key` header (the event's
//! stream id) lets the receiver drop a repeat. With a secret configured
//! (`FLINKQ_BATCH_WEBHOOK_SECRET`), `X-Flinkq-Signature: sha256=<hex>` is the
//! HMAC-SHA256 of the body, so the receiver can check who sent it.

use std::sync::Arc;
use std::time::Duration;

use flinkq_shared::store::{BatchCompleted, Store, StoreError};
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Next, Service, backoff, sleep_or_stop};
use crate::events::{Event, EventSink, RedisOp};
use crate::secret::Secret;

/// The consumer group of webhook senders.
pub const GROUP: &str = "batch-webhook";
/// A pending event is handed out again after this long without an ack.
pub const RECLAIM_AFTER: Duration = Duration::from_secs(30);
/// Pause between two looks at the stream when it had nothing new.
const IDLE_PAUSE: Duration = Duration::from_millis(250);
/// Events read at once.
const READ_COUNT: usize = 16;
/// Tries of one delivery before it is left pending for later.
const TRIES: usize = 4;
/// First wait after a failed POST (or Redis call); it doubles from there.
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest wait after failed POSTs (or Redis calls) in a row.
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Timeout of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook's URL. It may carry a token, so `Debug` and logs show only
/// its scheme and host.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Parses an http(s) URL with a host.
    pub fn parse(input: &str) -> Result<Self, String> {
        let url = Url::parse(input).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(WebhookUrl(url)),
            _ => Err("not an http(s) URL with a host".into()),
        }
    }

    /// `scheme://host[:port]/…`, safe to log.
    pub fn redacted(&self) -> String {
        let port = self.0.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{}://{}{port}/…",
            self.0.scheme(),
            self.0.host_str().unwrap_or("?")
        )
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Sends batch completions to the webhook.
#[derive(Debug)]
pub struct BatchWebhook {
    url: WebhookUrl,
    secret: Option<Secret>,
    http: reqwest::Client,
    store: Store,
    consumer: String,
    events: Arc<dyn EventSink>,
    /// The consumer group exists (created, or found, by this process).
    group_ready: bool,
}

impl BatchWebhook {
    /// A sender for `url` (signing with `secret` if given), named
    /// `consumer` in the group.
    pub fn new(
        url: WebhookUrl,
        secret: Option<Secret>,
        store: Store,
        consumer: String,
        events: Arc<dyn EventSink>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(POST_TIMEOUT).build()?;
        info!(webhook = %url.redacted(), %consumer, "batch webhook on");
        Ok(BatchWebhook {
            url,
            secret,
            http,
            store,
            consumer,
            events,
            group_ready: false,
        })
    }

    fn redis_failed(&self, error: &StoreError) {
        self.events
            .emit(Event::redis_error(RedisOp::Webhook, error));
    }
}

/// Delivers completions until shutdown. Redis and HTTP failures are logged
/// and retried; nothing here ends the worker.
impl Service for BatchWebhook {
    const NAME: &'static str = "batch webhook";

    /// The pause between two looks at the stream when it had nothing new.
    fn period(&self) -> Duration {
        IDLE_PAUSE
    }

    fn max_backoff(&self) -> Duration {
        RETRY_MAX
    }

    async fn tick(&mut self, stop: &CancellationToken) -> Result<Next, StoreError> {
        if !self.group_ready {
            self.store
                .create_event_group(GROUP)
                .await
                .inspect_err(|error| self.redis_failed(error))?;
            self.group_ready = true;
        }
        let entries = self
            .store
            .read_event_group(GROUP, &self.consumer, READ_COUNT, RECLAIM_AFTER)
            .await
            .inspect_err(|error| self.redis_failed(error))?;
        if entries.is_empty() {
            return Ok(Next::Period);
        }
        for entry in entries {
            let delivered = match &entry.completed {
                Some(completed) => self.deliver(completed, stop).await,
                None => true,
            };
            if !delivered {
                continue;
            }
            if let Err(error) = self
                .store
                .ack_events(GROUP, std::slice::from_ref(&entry.id))
                .await
            {
                // unacknowledged: it is sent again after RECLAIM_AFTER
                warn!(%error, event = %entry.id, "batch webhook: delivered but not acknowledged");
                self.redis_failed(&error);
            }
        }
        Ok(Next::Now)
    }
}

impl BatchWebhook {
    /// POSTs one completion, retrying with backoff; false if it was not
    /// accepted (it stays pending and is tried again later).
    async fn deliver(&self, completed: &BatchCompleted, stop: &CancellationToken) -> bool {
        let body = serde_json::json!({
            "type": "batch_completed",
            "event_id": completed.id,
            "batch": completed.batch,
            "counts": completed.counts,
        })
        .to_string();
        let signature = self
            .secret
            .as_ref()
            .map(|secret| sign(secret, body.as_bytes()));
        let mut delays = backoff(RETRY_MIN, RETRY_MAX).take(TRIES - 1);
        loop {
            let mut request = self
                .http
                .post(self.url.0.clone())
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", &completed.id);
            if let Some(signature) = &signature {
                request = request.header("X-Flinkq-Signature", signature);
            }
            let answer = request.body(body.clone()).send().await;
            let failure = match answer {
                Ok(response) if response.status().is_success() => {
                    info!(batch = %completed.batch, event = %completed.id, "batch completion delivered to the webhook");
                    self.events.emit(Event::WebhookDelivery { delivered: true });
                    return true;
                }
                Ok(response) => format!("HTTP {}", response.status()),
                Err(error) => error.without_url().to_string(),
            };
            self.events
                .emit(Event::WebhookDelivery { delivered: false });
            let Some(delay) = delays.next() else {
                warn!(batch = %completed.batch, event = %completed.id, %failure, retry_in = ?RECLAIM_AFTER,
                    "batch webhook refused the completion; it stays pending and is sent again later");
                return false;
            };
            warn!(batch = %completed.batch, %failure, retry_in = ?delay, "batch webhook failed; retrying");
            if sleep_or_stop(delay, stop).await {
                return false;
            }
        }
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_checked_and_never_shown_whole() {
        let url = WebhookUrl::parse("https://hooks.example.com:8443/T0/B1/secret-token?k=v")
            .expect("valid");
        let shown = format!("{url:?} {}", url.redacted());
        assert!(
            !shown.contains("secret-token") && !shown.contains("k=v"),
            "{shown}"
        );
        assert!(shown.contains("hooks.example.com:8443"), "{shown}");
        assert!(WebhookUrl::parse("ftp://example.com/x").is_err());
        assert!(WebhookUrl::parse("hooks.example.com").is_err());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2
        let secret = Secret::new("Jefe");
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(sign(&secret, b"a"), sign(&Secret::new("other"), b"a"));
    }
}
