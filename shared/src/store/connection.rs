//! Reaching Redis: the store's configuration, its one connection manager,
//! and the script loading every pipelined call needs.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::keys::Keys;
use super::scripts::Scripts;
use super::{StoreError, redact_url};

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `redis://` or `rediss://` URL (may carry a password).
    pub url: String,
    /// Namespace: jobs of different namespaces never meet.
    pub namespace: String,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up waiting for one answer after this long.
    pub response_timeout: Duration,
    /// CA certificate (PEM) for `rediss://`, instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl StoreConfig {
    /// Defaults for `url` and `namespace`: 2 s to connect, 5 s per answer.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            namespace: namespace.into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

/// A connection to flinkq's keys in one namespace. Cheap to clone.
///
/// The connection itself stays inside the store: every read and write goes
/// through a method named after its intent, so the key schema and the Lua
/// protocol have one home.
#[derive(Clone)]
pub struct Store {
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) scripts: Arc<Scripts>,
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects and checks Redis answers (`PING`), so a wrong URL or a Redis
    /// that is down is reported at start, not at the first job.
    pub async fn connect(config: &StoreConfig) -> Result<Store, StoreError> {
        let url = redact_url(&config.url);
        let bad_url = |source| StoreError::BadUrl {
            url: url.clone(),
            source,
        };
        let client = match &config.ca_file {
            None => redis::Client::open(config.url.as_str()).map_err(bad_url)?,
            Some(path) => {
                let root_cert = std::fs::read(path).map_err(|source| StoreError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                };
                redis::Client::build_with_tls(config.url.as_str(), certs).map_err(bad_url)?
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let unreachable = |source| StoreError::Unreachable {
            url: url.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(unreachable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable)?;
        Ok(Store {
            conn,
            keys: Keys::new(&config.namespace),
            scripts: Arc::new(Scripts::new()),
            url,
        })
    }

    /// The key schema of this store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A raw connection, for tests that corrupt or inspect keys directly
    /// (evictions, copied pointers, data loss). Not part of the production
    /// API: everything else goes through the store's methods.
    #[cfg(feature = "test-kit")]
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A call of `script` with every key of the schema in `KEYS` (see
    /// `keys.rs`): no script builds a key from a prefix of its own.
    pub(super) fn invoke<'a>(&'a self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        self.keys.pass_to(&mut call);
        call
    }

    /// Loads scripts before a pipeline uses them (EVALSHA in a pipeline cannot
    /// fall back to EVAL on NOSCRIPT).
    pub(super) async fn load_scripts(&self, scripts: &[&redis::Script]) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        for script in scripts {
            script
                .load_async(&mut conn)
                .await
                .map_err(StoreError::command("SCRIPT LOAD"))?;
        }
        Ok(())
    }
}
