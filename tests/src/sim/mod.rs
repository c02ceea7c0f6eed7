//! The Flinks simulator: a real HTTP server (axum) that follows the Flinks
//! contract of every data product ([`Product`]) — Authorize, then the
//! product (202 while pending, polled the way the provider wants: the same
//! POST again, or `GET …Async/{RequestId}`; then 200 with a payload that
//! names the loginId), sessions that expire — with per-login scripted
//! behaviour, and counters that let tests assert on what it saw: calls per
//! login and product, spacing between polls, calls after success and
//! contract violations.

mod config;
mod handlers;
mod hostile;
mod payload;
mod product;
mod recorder;
mod state;
mod stats;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use config::{DefaultScript, Endpoint, Fault, Script, ScriptedFault, SimConfig};
use flinkq_shared::LoginId;
pub use payload::{investments_payload, product_payload};
pub use product::{CallKind, PollStrategy, Product};
pub use recorder::{RecordedRequest, RecordingServer};
pub use state::{CRASH_LEAD, CRASH_WINDOW, SPACING_TOLERANCE};
pub use stats::{LoginStats, ProductStats, Totals, Violation};
use tokio::sync::watch;

use state::SimState;

/// The customer id in the simulator's endpoint paths (the public sandbox's).
pub const CUSTOMER_ID: &str = "43387ca6-0391-4c82-857d-70d95f087ecb";

pub(crate) struct Shared {
    config: SimConfig,
    state: Mutex<SimState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds `config.bind` and serves on the current tokio runtime until
    /// [`SimHandle::shutdown`] is called or the runtime ends.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(SimState::default()),
        });
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let app = handlers::router(shared.clone());
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(SimHandle {
            addr,
            shared,
            stop: Arc::new(stop_tx),
        })
    }
}

/// A running simulator. Cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Authorize endpoint URL.
    pub fn authorize_url(&self) -> String {
        format!(
            "{}/v3/{CUSTOMER_ID}/BankingServices/Authorize",
            self.base_url()
        )
    }

    /// The Investments endpoint URL (`wealth_base_url()` + `/Investments`).
    pub fn investments_url(&self) -> String {
        format!("{}/Investments", self.wealth_base_url())
    }

    /// The banking base, up to the customer id: the products' paths
    /// ([`Product::first_call_path`], [`Product::async_path`]) follow it.
    pub fn banking_base_url(&self) -> String {
        format!("{}/v3/{CUSTOMER_ID}", self.base_url())
    }

    /// The wealth base (Investments), up to the customer id. The same as the
    /// banking base here; Flinks serves it from another host.
    pub fn wealth_base_url(&self) -> String {
        format!("{}/v3/{CUSTOMER_ID}", self.base_url())
    }

    /// The URL of `product`'s first call for `login` in session `request_id`.
    pub fn first_call_url(&self, product: Product, login: &str, request_id: &str) -> String {
        let base = match product {
            Product::Investments => self.wealth_base_url(),
            Product::AccountsDetail
            | Product::AccountsSummary
            | Product::Statements
            | Product::Attributes => self.banking_base_url(),
        };
        format!("{base}{}", product.first_call_path(login, request_id))
    }

    /// The `GET …Async/{RequestId}` URL of a `GetAsync` product.
    pub fn async_url(&self, product: Product, request_id: &str) -> Option<String> {
        let path = product.async_path(request_id)?;
        Some(format!("{}{path}", self.banking_base_url()))
    }

    /// Scripts one login.
    pub fn set_script(&self, login: &str, script: Script) {
        self.shared.lock().set_script(login.to_owned(), script);
    }

    /// Scripts many logins.
    pub fn set_scripts(&self, scripts: impl IntoIterator<Item = (String, Script)>) {
        let mut state = self.shared.lock();
        for (login, script) in scripts {
            state.set_script(login, script);
        }
    }

    /// What was seen for one login.
    pub fn login_stats(&self, login: &str) -> LoginStats {
        self.shared.lock().login_stats(login)
    }

    /// Asserts each of `logins` made exactly `calls` data calls: a step
    /// lost or run twice (a failover, a slot move) shows as one more or one
    /// fewer.
    pub fn assert_data_calls_each(&self, logins: &[LoginId], calls: u32) {
        for login in logins {
            let stats = self.login_stats(&login.to_string());
            assert_eq!(stats.investments_calls, calls, "{login}: {stats:?}");
        }
    }

    /// Totals over all logins.
    pub fn totals(&self) -> Totals {
        self.shared.lock().totals()
    }

    /// Every contract violation seen, in order.
    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations()
    }

    /// The most calls (Authorize and products) that arrived within any `window`.
    pub fn max_calls_in_window(&self, window: std::time::Duration) -> usize {
        self.shared.lock().max_calls_in_window(window)
    }

    /// Records that a worker was just killed (see [`Totals::repeats_after_crash`]).
    pub fn note_crash(&self) {
        self.shared.lock().note_crash(std::time::Instant::now());
    }

    /// Stops serving.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests;
