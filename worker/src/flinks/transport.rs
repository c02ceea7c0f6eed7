//! How a call reaches Flinks: hyper's pooled HTTP/1.1 client over rustls
//! (webpki roots), through the proxy the environment names if one applies,
//! each call under one deadline that covers its body too.
//!
//! Not reqwest: it parsed every request's URL twice more as a `url::Url`
//! (its redirect layer runs even when redirects are off), 10.9% of the
//! worker's instructions per step, and leaving it cut them by 19%
//! (BENCHMARKS.md, seventh pass). What reqwest did that flinkq relies on is
//! done here: the connect timeout, the total timeout, `TCP_NODELAY`, a
//! bounded idle pool whose connections close after 90 s idle, and
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`. Redirects are never
//! followed: hyper does not, and the client refuses a 3xx as an answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::secret::Secret;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection: TCP, possibly through a proxy's CONNECT tunnel, with TLS
/// when the URL is `https`.
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The longest a connection waits to be set up, whatever the call timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections kept per host: one per concurrent call is plenty.
const MAX_IDLE_PER_HOST: usize = 1024;

/// Why a call got no (whole) answer. Every kind is worth a later retry.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The call, its body included, took longer than the call timeout.
    #[error("no whole answer within FLINKQ_HTTP_TIMEOUT ({})", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// No connection to Flinks (or to the proxy) could be set up.
    #[error("cannot connect to Flinks{}", chain(.0))]
    Connect(BoxError),
    /// The connection broke while the answer's body was read.
    #[error("the answer's body broke off{}", chain(.0))]
    Body(BoxError),
    /// The request could not be sent, or the connection broke before the
    /// answer's head.
    #[error("the call to Flinks failed{}", chain(.0))]
    Network(BoxError),
    /// A request hyper cannot send (flinkq built its URL from the bases
    /// checked at start; this would be a bug). The URL is left out of the
    /// message: it may name the login.
    #[error("the request could not be built: {0}")]
    Request(http::Error),
}

/// `": cause: its cause…"`: an error's whole chain of sources, so the
/// stored message says why (`Connection refused`), not only that.
fn chain(error: &BoxError) -> String {
    let mut text = format!(": {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The HTTP side of the Flinks client. Cheap to clone.
#[derive(Clone)]
pub(super) struct Transport {
    client: Client<Connector, Full<Bytes>>,
    /// Sent as `flinks-auth-key`; marked sensitive, so no debug output
    /// shows it.
    auth_key: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The flinks-auth-key header.
const AUTH_KEY: HeaderName = HeaderName::from_static("flinks-auth-key");

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Transport {
    /// The client, its TLS set up and the environment's proxies read.
    pub(super) fn new(
        auth_key: Option<&Secret>,
        timeout: Duration,
    ) -> Result<Transport, TransportBuildError> {
        Transport::with_proxies(auth_key, timeout, Matcher::from_env())
    }

    /// The client, going through `proxies` where they apply.
    fn with_proxies(
        auth_key: Option<&Secret>,
        timeout: Duration,
        proxies: Matcher,
    ) -> Result<Transport, TransportBuildError> {
        let auth_key = auth_key.map(auth_key_header).transpose()?;
        let mut http = HttpConnector::new();
        // https URLs reach this connector too: TLS is set up over it
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(MAX_CONNECT_TIMEOUT)));
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(TransportBuildError::Tls)?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Arc::new(tls);
        let connector = Connector {
            http,
            tls,
            proxies: Arc::new(proxies),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            // without a timer, idle connections past the pool's idle
            // timeout (90 s) are only dropped when next looked at
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Transport {
            client,
            auth_key,
            timeout,
        })
    }

    /// Sends one call: a POST with its JSON `body`, or a GET without one.
    /// The returned answer's body is read under the same deadline.
    pub(super) async fn send(
        &self,
        method: http::Method,
        url: &url::Url,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, TransportError> {
        let mut deadline = Box::pin(tokio::time::sleep(self.timeout));
        let mut request = Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(ACCEPT, JSON);
        if let Some(key) = &self.auth_key {
            request = request.header(AUTH_KEY, key.clone());
        }
        let body = match body {
            Some(body) => {
                request = request
                    .header(CONTENT_TYPE, JSON)
                    .header(CONTENT_LENGTH, body.len());
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(TransportError::Request)?;
        let response = within(&mut deadline, self.timeout, self.client.request(request))
            .await?
            .map_err(|error| {
                if error.is_connect() {
                    TransportError::Connect(error.into())
                } else {
                    TransportError::Network(error.into())
                }
            })?;
        let (head, body) = response.into_parts();
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
            deadline,
            timeout: self.timeout,
        })
    }
}

/// Why the transport could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// rustls refused its own defaults (a build without TLS 1.2/1.3).
    #[error("TLS cannot be set up: {0}")]
    Tls(rustls::Error),
    /// The auth key cannot be sent (the configuration refuses such a key
    /// before it gets here, with the same check).
    #[error("the Flinks auth key (FLINKQ_AUTH_KEY or FLINKQ_AUTH_KEY_FILE) cannot be used: {0}")]
    AuthKey(#[from] UnsendableAuthKey),
}

/// An auth key no HTTP header can carry.
#[derive(Debug, thiserror::Error)]
#[error("it holds a control character (a line break inside?), which an HTTP header cannot carry")]
pub struct UnsendableAuthKey;

/// The `flinks-auth-key` header's value for `key`, marked sensitive so no
/// debug output shows it.
pub fn auth_key_header(key: &Secret) -> Result<HeaderValue, UnsendableAuthKey> {
    let mut value = HeaderValue::from_str(key.expose()).map_err(|_| UnsendableAuthKey)?;
    value.set_sensitive(true);
    Ok(value)
}

/// `future`, unless `deadline` passes first.
async fn within<F: Future>(
    deadline: &mut Pin<Box<Sleep>>,
    timeout: Duration,
    future: F,
) -> Result<F::Output, TransportError> {
    tokio::select! {
        biased;
        output = future => Ok(output),
        () = deadline.as_mut() => Err(TransportError::Timeout(timeout)),
    }
}

/// An answer's head, and its body to read chunk by chunk before the call's
/// deadline.
pub(super) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A body read chunk by chunk: an answer's, or a test's.
pub(super) trait Chunks: Send {
    /// The body's size, when its head announced one.
    fn content_length(&self) -> Option<u64>;

    /// The next chunk of the body; `None` at its end.
    fn chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, TransportError>> + Send;
}

impl Chunks for Answer {
    fn content_length(&self) -> Option<u64> {
        hyper::body::Body::size_hint(&self.body).exact()
    }

    async fn chunk(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            let frame = within(&mut self.deadline, self.timeout, self.body.frame()).await?;
            match frame {
                None => return Ok(None),
                Some(Err(error)) => return Err(TransportError::Body(error.into())),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Ok(Some(data)),
                    // an empty chunk, or trailers: nothing of the payload
                    _ => continue,
                },
            }
        }
    }
}

/// Connects directly, or through a CONNECT tunnel where the environment
/// names a proxy for the URL; TLS over either for `https`.
#[derive(Clone)]
struct Connector {
    http: HttpConnector,
    tls: Arc<rustls::ClientConfig>,
    proxies: Arc<Matcher>,
}

impl tower::Service<Uri> for Connector {
    type Response = Io;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Io, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // both connectors are always ready: they start work only when called
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // called for a new connection only: an idle one is reused without
        let Some(proxy) = self.proxies.intercept(&dst) else {
            return HttpsConnector::from((self.http.clone(), self.tls.clone())).call(dst);
        };
        if proxy.uri().scheme_str() != Some("http") {
            let refused: BoxError = format!(
                "the proxy {} set for {dst} is not an http:// proxy, the only kind flinkq tunnels through; fix HTTPS_PROXY, HTTP_PROXY or ALL_PROXY, or exempt the host in NO_PROXY",
                proxy.uri().authority().map_or("?", |a| a.as_str()),
            )
            .into();
            return Box::pin(std::future::ready(Err(refused)));
        }
        // Every URL goes through the tunnel, http ones too: then the proxy
        // never sees the request, its auth key among its headers.
        let mut tunnel = Tunnel::new(proxy.uri().clone(), self.http.clone());
        if let Some(auth) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        HttpsConnector::from((tunnel, self.tls.clone())).call(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// Reads one HTTP head (up to the blank line) off `socket`.
    async fn read_head(socket: &mut BufReader<TcpStream>) -> String {
        let mut head = String::new();
        loop {
            let before = head.len();
            socket.read_line(&mut head).await.expect("read head");
            if head.len() == before || head[before..] == *"\r\n" {
                return head;
            }
        }
    }

    #[tokio::test]
    async fn a_proxied_call_tunnels_and_the_proxy_never_sees_the_auth_key() {
        // the origin: answers one call with the headers it got
        let origin = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin_addr = origin.local_addr().expect("addr");
        tokio::spawn(async move {
            let (socket, _) = origin.accept().await.expect("accept");
            let mut socket = BufReader::new(socket);
            let head = read_head(&mut socket).await;
            let body = head.to_lowercase();
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.expect("answer");
        });
        // the proxy: takes one CONNECT, keeps its head, then relays bytes
        let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy_addr = proxy.local_addr().expect("addr");
        let (seen_tx, mut seen_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (socket, _) = proxy.accept().await.expect("accept");
            let mut socket = BufReader::new(socket);
            let head = read_head(&mut socket).await;
            seen_tx.send(head).ok();
            let mut upstream = TcpStream::connect(origin_addr).await.expect("upstream");
            let mut client = socket.into_inner();
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .expect("established");
            tokio::io::copy_bidirectional(&mut client, &mut upstream)
                .await
                .ok();
        });

        let key = Secret::new("s3cr3t-auth-key");
        let proxies = Matcher::builder()
            .http(format!("http://{proxy_addr}"))
            .build();
        let transport = Transport::with_proxies(Some(&key), Duration::from_secs(10), proxies)
            .expect("transport");
        let url = url::Url::parse(&format!("http://{origin_addr}/v3/x")).expect("url");
        let mut answer = transport
            .send(http::Method::POST, &url, Some(b"{}".to_vec()))
            .await
            .expect("answer through the proxy");
        assert_eq!(answer.status(), StatusCode::OK);
        let mut got = Vec::new();
        while let Some(chunk) = answer.chunk().await.expect("body") {
            got.extend_from_slice(&chunk);
        }
        let got = String::from_utf8(got).expect("utf-8");
        assert!(got.starts_with("post /v3/x http/1.1"), "{got}");
        assert!(got.contains("flinks-auth-key: s3cr3t-auth-key"), "{got}");
        // the proxy kept the CONNECT before it let any byte through
        let connect = seen_rx.try_recv().expect("the call went through the proxy");
        assert!(
            connect.starts_with(&format!("CONNECT {origin_addr} HTTP/1.1\r\n")),
            "{connect}"
        );
        assert!(!connect.contains("s3cr3t"), "{connect}");
    }
}
