//! `flinkq serve`: the HTTP API (JSON under `/api/v1`) over the same store
//! as the CLI, in the same binary.
//!
//! # Layout
//!
//! - this file: the command's flags, the shared state, binding (loopback
//!   unless a token is set) and graceful shutdown.
//! - [`auth`]: the two tokens, `Reader` and `Operator` extractors.
//! - [`api`]: the router, the headers every response carries, JSON errors
//!   for what axum refuses itself; one file per resource.
//! - [`openapi`]: the OpenAPI document, generated from the handlers.
//! - [`error`]: `ServeError`, mapped to statuses and `{"error": …}` bodies.
//!
//! - [`console`]: the server-rendered console under `/`, on the same state
//!   and tokens (sign-in sessions in memory).

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod openapi;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flinkq_shared::byte_size::parse_byte_size;
use flinkq_shared::redis_args::RedisArgs;
use flinkq_shared::secret::Secret;
use flinkq_shared::store::{Store, StoreConfig};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::CliError;
use auth::Tokens;
use error::ServeError;

/// `flinkq serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address needs a token
    /// (FLINKQ_API_TOKEN or FLINKQ_API_READ_TOKEN).
    #[arg(long, env = "FLINKQ_SERVE_ADDR", default_value = "127.0.0.1:8088")]
    pub addr: SocketAddr,

    /// The full-access token: enqueue, retry, purge, cancel, payloads.
    #[arg(
        long,
        env = "FLINKQ_API_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_token_file"
    )]
    pub api_token: Option<Secret>,

    /// A file holding the full-access token.
    #[arg(long, env = "FLINKQ_API_TOKEN_FILE", hide_env_values = true)]
    pub api_token_file: Option<PathBuf>,

    /// The read-only token: batches, jobs, events; no payloads, no actions.
    #[arg(
        long,
        env = "FLINKQ_API_READ_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_read_token_file"
    )]
    pub api_read_token: Option<Secret>,

    /// A file holding the read-only token.
    #[arg(long, env = "FLINKQ_API_READ_TOKEN_FILE", hide_env_values = true)]
    pub api_read_token_file: Option<PathBuf>,

    /// Largest request body accepted, a byte size like FLINKQ_MAX_PAYLOAD
    /// (KB, MB in powers of 1000; KiB, MiB in powers of 1024); 413 beyond:
    /// about 40 bytes per loginId, so 16MiB holds some 400,000.
    #[arg(long, env = "FLINKQ_SERVE_MAX_BODY", default_value = "16MiB", value_parser = parse_max_body)]
    pub max_body: usize,

    /// Most event streams (GET /api/v1/events) open at once; each holds one
    /// Redis connection.
    #[arg(long, env = "FLINKQ_SERVE_MAX_STREAMS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_streams: u32,
}

/// Everything a handler needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The shared store (never blocked: event streams have their own).
    pub store: Store,
    /// How to open a store of its own for each event stream.
    pub store_config: Arc<StoreConfig>,
    /// The tokens.
    pub tokens: Arc<Tokens>,
    /// FLINKQ_SERVE_MAX_BODY.
    pub max_body: usize,
    /// One permit per open event stream.
    pub streams: Arc<Semaphore>,
    /// FLINKQ_SERVE_MAX_STREAMS.
    pub max_streams: usize,
    /// Cancelled at shutdown: event streams end so the server can stop.
    pub shutdown: CancellationToken,
    /// The OpenAPI document, rendered once the routes are known.
    pub openapi: Arc<OnceLock<String>>,
    /// How long one `XREAD BLOCK` of an event stream waits.
    pub stream_block: Duration,
    /// Console sign-in sessions.
    pub sessions: Arc<console::session::Sessions>,
}

/// Runs `flinkq serve` until SIGTERM or SIGINT.
pub async fn run(redis: &RedisArgs, args: &ServeArgs) -> Result<(), CliError> {
    let tokens = Tokens::load(
        args.api_token.as_ref(),
        args.api_token_file.as_deref(),
        args.api_read_token.as_ref(),
        args.api_read_token_file.as_deref(),
    )?;
    if !args.addr.ip().is_loopback() && !tokens.configured() {
        return Err(ServeError::OpenToTheNetwork { addr: args.addr }.into());
    }
    let store_config = redis.store_config();
    let store = Store::connect(&store_config).await?;
    let signal = flinkq_shared::shutdown::on_signal()?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: args.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    let max_streams = args.max_streams as usize;
    let shutdown = CancellationToken::new();
    let state = AppState {
        store,
        store_config: Arc::new(store_config),
        tokens: Arc::new(tokens),
        max_body: args.max_body,
        streams: Arc::new(Semaphore::new(max_streams)),
        max_streams,
        shutdown: shutdown.clone(),
        openapi: Arc::new(OnceLock::new()),
        stream_block: Duration::from_secs(5),
        sessions: Arc::default(),
    };
    let access = if state.tokens.configured() {
        "bearer tokens required"
    } else {
        "no token set: open to this host only"
    };
    let app = api::app(state);
    tracing::info!(addr = %local, "flinkq serve listening on http://{local}/ (console) and /api/v1 ({access})");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let signal = signal.await;
            tracing::info!("{signal}: closing event streams and stopping");
            shutdown.cancel();
        })
        .await
        .map_err(ServeError::Serve)?;
    Ok(())
}

/// `FLINKQ_SERVE_MAX_BODY`, read like every size setting
/// ([`parse_byte_size`]); under 1 KiB no real request would fit.
fn parse_max_body(input: &str) -> Result<usize, String> {
    let bytes = parse_byte_size(
        input,
        1024,
        "a body limit under 1KiB refuses every real request; use e.g. 16MiB",
    )?;
    usize::try_from(bytes).map_err(|_| format!("{input:?} is too large a body limit"))
}
