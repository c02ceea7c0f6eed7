//! A server that records every request it gets and answers 200: the
//! "other origin" a hostile redirect points at, to prove nothing reaches it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;

/// One request as the recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Every header, name and value (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

/// A running recorder; stops with the runtime.
#[derive(Debug, Clone)]
pub struct RecordingServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RecordingServer {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<RecordingServer> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(seen.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RecordingServer { addr, seen })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn record(
    State(seen): State<Arc<Mutex<Vec<RecordedRequest>>>>,
    request: Request,
) -> StatusCode {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RecordedRequest {
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            headers,
        });
    StatusCode::OK
}
