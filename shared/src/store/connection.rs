//! Reaching Redis: the store's configuration, its one connection (whatever
//! the topology, see `topology.rs`), and the script loading every pipelined
//! call needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};

use super::commit_batch::{CommitBatcher, CommitBatching};
use super::keys::Keys;
use super::scripts::{LuaScript, Scripts};
use super::topology::{
    ClusterLink, RedisConnection, RedisMode, SentinelConnection, Topology, split_hosts,
};
use super::{StoreError, redact_url};
use redis::Value;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `redis://` or `rediss://` URL (may carry a password). With
    /// [`RedisMode::Sentinel`] it lists the Sentinels and with
    /// [`RedisMode::Cluster`] the seed nodes, comma-separated
    /// (`redis://:pw@h1:26379,h2:26379/0`).
    pub url: String,
    /// Which topology `url` describes.
    pub mode: RedisMode,
    /// The Sentinels' name of the primary ([`RedisMode::Sentinel`] only).
    pub sentinel_master: String,
    /// Namespace: jobs of different namespaces never meet.
    pub namespace: String,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Give up waiting for one answer after this long.
    pub response_timeout: Duration,
    /// CA certificate (PEM) for `rediss://`, instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// `FLINKQ_REDIS_WAIT_REPLICAS`: replicas that must confirm each commit
    /// and enqueue (`WAIT`) before it counts as done; 0 turns `WAIT` off.
    pub wait_replicas: u32,
    /// `FLINKQ_REDIS_WAIT_TIMEOUT`: how long one `WAIT` may block.
    pub wait_timeout: Duration,
    /// Dedicated connections for writes followed by `WAIT` (used only when
    /// `wait_replicas > 0`); see [`Durable`].
    pub commit_connections: usize,
}

impl StoreConfig {
    /// Defaults for `url` and `namespace`: 2 s to connect, 5 s per answer.
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            mode: RedisMode::Standalone,
            sentinel_master: "mymaster".into(),
            namespace: namespace.into(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            ca_file: None,
            wait_replicas: 0,
            wait_timeout: Duration::from_secs(1),
            commit_connections: 2,
        }
    }
}

/// Writes that must be confirmed by replicas, on connections of their own.
///
/// `WAIT` blocks the connection it runs on until the replicas confirm or
/// the timeout passes, and Redis answers a connection's commands in order:
/// on the store's shared (multiplexed) connection, every claim, heartbeat,
/// `begin` and read queued behind a `WAIT` would wait for the slowest
/// replica, and one lagging replica would serialize the whole worker and
/// let its leases expire. So commits and enqueues (the writes whose loss
/// would matter) go, with their `WAIT`, over a few dedicated connections,
/// round robin; everything else keeps the shared one. Several connections,
/// not one: a commit still queues behind the `WAIT`s of the commits sent
/// before it on its connection, so a few lanes keep a worker's commits from
/// all waiting in one line (`commit_connections`, sized by the worker from
/// its concurrency).
///
/// The write and its `WAIT` go in one pipeline on one connection: `WAIT`
/// counts the replicas that reached this connection's last write, so a
/// `WAIT` sent after a reconnect would confirm nothing of the write.
///
/// And "its last write" is the connection's last command that *propagated*
/// something (Redis 7 keeps a connection's offset only for those): a retry
/// of a commit that reads "already applied", a read-back that finds the
/// commit, an enqueue run again over jobs that exist, all write nothing, so
/// their `WAIT` would count replicas up to an older write of that lane (or
/// any replica at all on a fresh connection) and acknowledge a transition
/// the replicas may not have. So every such pipeline also writes the
/// namespace's `wait:mark` key right before its `WAIT`: the connection's
/// offset is then the primary's offset at that moment, which covers the
/// write and everything applied before it, whichever connection applied it.
pub(super) struct Durable {
    replicas: u32,
    timeout: Duration,
    lanes: Vec<RedisConnection>,
    next: AtomicUsize,
}

impl Durable {
    fn lane(&self) -> RedisConnection {
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[at].clone()
    }
}

/// A connection to flinkq's keys in one namespace. Cheap to clone.
///
/// The connection itself stays inside the store: every read and write goes
/// through a method named after its intent, so the key schema and the Lua
/// protocol have one home.
#[derive(Clone)]
pub struct Store {
    pub(super) conn: RedisConnection,
    /// Shared, not copied: every claimed job's [`super::Claim`] holds a
    /// `Store`, and a copy of the key schema (every script key's name) cost
    /// each step some 25 allocations.
    pub(super) keys: Arc<Keys>,
    pub(super) scripts: Arc<Scripts>,
    /// Commit and enqueue connections with `WAIT`, when
    /// `FLINKQ_REDIS_WAIT_REPLICAS` is set.
    durable: Option<Arc<Durable>>,
    /// Where [`super::Claim::commit`] sends commits when they go in groups
    /// (see `commit_batch.rs`); none: each commit is a call of its own.
    pub(super) batcher: Option<Arc<CommitBatcher>>,
    url: Arc<str>,
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
        let mut conn = open(config, config.response_timeout).await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unreachable(config))?;
        let durable = if config.wait_replicas == 0 {
            None
        } else {
            // an answer on these connections includes the WAIT
            let timeout = config.response_timeout + config.wait_timeout;
            let mut lanes = Vec::new();
            for _ in 0..config.commit_connections.max(1) {
                lanes.push(open(config, timeout).await?);
            }
            Some(Arc::new(Durable {
                replicas: config.wait_replicas,
                timeout: config.wait_timeout,
                lanes,
                next: AtomicUsize::new(0),
            }))
        };
        Ok(Store {
            conn,
            keys: Arc::new(Keys::new(&config.namespace)),
            scripts: Arc::new(Scripts::new()),
            durable,
            batcher: None,
            url: url.into(),
        })
    }

    /// This store, with the commits of the claims it makes sent in groups
    /// (see `commit_batch.rs`): a worker's. Starts the batcher's task, so
    /// it needs a Tokio runtime; the task ends once the last clone of the
    /// returned store is dropped.
    pub fn with_commit_batching(self, limits: CommitBatching) -> Store {
        // the task's store has no batcher: its own handle would keep its
        // queue open forever
        let plain = Store {
            batcher: None,
            ..self.clone()
        };
        Store {
            batcher: Some(Arc::new(CommitBatcher::start(plain, limits))),
            ..self
        }
    }

    /// Runs a write (one script call, or a pipeline of them) that must
    /// survive a failover: with `FLINKQ_REDIS_WAIT_REPLICAS` set, on a
    /// dedicated connection and followed there by `WAIT`. Returns the
    /// replies and whether enough replicas confirmed them (always true
    /// without `WAIT`). The pipeline's scripts must be loaded (`scripts`):
    /// a pipelined `EVALSHA` cannot fall back on `NOSCRIPT`, so a new
    /// primary without them gets them loaded and the write sent once more.
    pub(super) async fn write_durably(
        &self,
        op: &'static str,
        mut pipe: redis::Pipeline,
        scripts: &[&redis::Script],
    ) -> Result<(Vec<Value>, Acked), StoreError> {
        let Some(durable) = &self.durable else {
            let mut conn = self.conn.clone();
            let replies = match pipe.query_async(&mut conn).await {
                Err(error) if is_noscript(&error) => {
                    self.load_scripts(scripts).await?;
                    pipe.query_async(&mut conn).await
                }
                replies => replies,
            }
            .map_err(StoreError::command(op))?;
            return Ok((replies, Acked::Enough));
        };
        let writes = pipe.cmd_iter().count();
        pipe.cmd("SET").arg(self.keys.wait_mark()).arg(1).ignore();
        pipe.cmd("WAIT")
            .arg(durable.replicas)
            .arg(super::millis(durable.timeout));
        let mut conn = durable.lane();
        let mut replies: Vec<Value> = match pipe.query_async(&mut conn).await {
            Err(error) if is_noscript(&error) => {
                for script in scripts {
                    script
                        .load_async(&mut conn)
                        .await
                        .map_err(StoreError::command("SCRIPT LOAD"))?;
                }
                pipe.query_async(&mut conn).await
            }
            replies => replies,
        }
        .map_err(StoreError::command(op))?;
        let confirmed = match replies.pop() {
            Some(Value::Int(n)) if replies.len() == writes => u32::try_from(n).unwrap_or(0),
            other => {
                return Err(StoreError::reply(
                    op,
                    format!("expected {writes} replies and WAIT's count, got {other:?}"),
                ));
            }
        };
        let acked = if confirmed >= durable.replicas {
            Acked::Enough
        } else {
            Acked::Short(StoreError::NotReplicated {
                op,
                acked: confirmed,
                wanted: durable.replicas,
                timeout: durable.timeout,
            })
        };
        Ok((replies, acked))
    }

    /// Is the node serving this namespace a primary that takes writes
    /// (`ROLE` answers `master`)? In Sentinel mode a replica's answer (a
    /// demoted primary) makes the Sentinels be asked again. For `/readyz`.
    pub async fn primary_writable(&self) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let role: Vec<Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .map_err(StoreError::command("ROLE"))?;
        let master = matches!(
            role.first(),
            Some(Value::BulkString(bytes)) if bytes == b"master"
        ) || matches!(role.first(), Some(Value::SimpleString(text)) if text == "master");
        if !master && let RedisConnection::Sentinel(sentinel) = &self.conn {
            sentinel.primary_demoted().await;
        }
        Ok(master)
    }

    /// Which node serves this namespace now: the one node, the primary the
    /// Sentinels named, or the cluster primary owning the namespace's slot.
    pub async fn topology(&self) -> Result<Topology, StoreError> {
        match &self.conn {
            RedisConnection::Standalone(_) => Ok(Topology::Standalone {
                node: self.url.to_string(),
            }),
            RedisConnection::Sentinel(sentinel) => {
                let (primary, master_name) = sentinel.primary();
                Ok(Topology::Sentinel {
                    master_name,
                    primary,
                })
            }
            RedisConnection::Cluster(_) => {
                let mut conn = self.conn.clone();
                let key = self.keys.counts();
                let slot: u16 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .map_err(StoreError::command("CLUSTER KEYSLOT"))?;
                let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await
                    .map_err(StoreError::command("CLUSTER SLOTS"))?;
                let primary = ranges
                    .iter()
                    .find_map(|range| slot_range_primary(range, slot))
                    .ok_or_else(|| {
                        StoreError::reply("CLUSTER SLOTS", format!("no node serves slot {slot}"))
                    })?;
                Ok(Topology::Cluster { slot, primary })
            }
        }
    }

    /// The key schema of this store's namespace.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A raw connection, for tests that corrupt or inspect keys directly
    /// (evictions, copied pointers, data loss). Not part of the production
    /// API: everything else goes through the store's methods.
    #[cfg(feature = "test-kit")]
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// A call of `script` with the keys of the schema it uses in `KEYS`
    /// (see `keys.rs`): no script builds a key from a prefix of its own.
    pub(super) fn invoke<'a>(&'a self, script: &'a LuaScript) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        for key in self.keys.used(&script.keys) {
            call.key(key);
        }
        call
    }

    /// As [`Store::invoke`], for a pipeline: the same `EVALSHA` with every
    /// key, built straight into one command (a `ScriptInvocation` holds
    /// each key and argument in an allocation of its own, then copies them
    /// all into the command: ~70 allocations per commit, on every step).
    pub(super) fn evalsha(&self, script: &LuaScript, args: usize) -> redis::Cmd {
        let keys = script.keys.len();
        let mut cmd = redis::Cmd::with_capacity(3 + keys + args, 64 * (keys + args));
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys);
        for key in self.keys.used(&script.keys) {
            cmd.arg(key);
        }
        cmd
    }

    /// Loads the scripts a worker runs, once at its start: otherwise every
    /// commit sent before the first one loaded `commit` fails `NOSCRIPT` and
    /// is sent again (a pipelined `EVALSHA` cannot fall back). A script a
    /// restarted or new primary lacks is still loaded on its first use.
    pub async fn load_worker_scripts(&self) -> Result<(), StoreError> {
        let s = &self.scripts;
        self.load_scripts(&[
            &s.claim,
            &s.begin,
            &s.commit,
            &s.resolve_commit,
            &s.extend,
            &s.release,
            &s.reap,
            &s.purge,
        ])
        .await
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

/// `host:port` of the primary of one `CLUSTER SLOTS` entry
/// (`[start, end, [host, port, id], replicas...]`) if it covers `slot`.
fn slot_range_primary(range: &redis::Value, slot: u16) -> Option<String> {
    use redis::Value;
    let Value::Array(fields) = range else {
        return None;
    };
    let bound = |value: Option<&Value>| match value {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    let (start, end) = (bound(fields.first())?, bound(fields.get(1))?);
    if !(start..=end).contains(&i64::from(slot)) {
        return None;
    }
    let Some(Value::Array(node)) = fields.get(2) else {
        return None;
    };
    let host = match node.first()? {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        _ => return None,
    };
    Some(format!("{host}:{}", bound(node.get(1))?))
}

/// Whether a write's replicas confirmed it (see [`Store::write_durably`]).
#[derive(Debug, Clone)]
pub(super) enum Acked {
    /// Enough replicas confirmed it (or `WAIT` is off).
    Enough,
    /// Applied on the primary, not confirmed: the error to return.
    Short(StoreError),
}

impl Acked {
    /// `value` once the replicas confirmed the write it comes from; the
    /// unconfirmed write's error otherwise.
    pub(super) fn answer<T>(self, value: T) -> Result<T, StoreError> {
        match self {
            Acked::Enough => Ok(value),
            Acked::Short(error) => Err(error),
        }
    }
}

fn is_noscript(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        || error.to_string().contains("NOSCRIPT")
}

/// One connection to the topology `config` describes, answers awaited for
/// `response_timeout`.
async fn open(
    config: &StoreConfig,
    response_timeout: Duration,
) -> Result<RedisConnection, StoreError> {
    let conn = match config.mode {
        RedisMode::Standalone => RedisConnection::Standalone(
            ConnectionManager::new_with_config(
                standalone_client(config)?,
                manager_config(config, response_timeout),
            )
            .await
            .map_err(unreachable(config))?,
        ),
        RedisMode::Sentinel => RedisConnection::Sentinel(
            SentinelConnection::connect(
                sentinel_client(config)?,
                config.sentinel_master.clone(),
                manager_config(config, response_timeout),
            )
            .await
            .map_err(unreachable(config))?,
        ),
        RedisMode::Cluster => RedisConnection::Cluster(
            ClusterLink::connect(
                cluster_client(config, response_timeout)?,
                &Keys::new(&config.namespace).counts(),
            )
            .await
            .map_err(unreachable(config))?,
        ),
    };
    Ok(conn)
}

fn unreachable(config: &StoreConfig) -> impl Fn(redis::RedisError) -> StoreError {
    let url = redact_url(&config.url);
    move |source| StoreError::Unreachable {
        url: url.clone(),
        source,
    }
}

fn manager_config(config: &StoreConfig, response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2))
}

fn bad_url(config: &StoreConfig) -> impl Fn(redis::RedisError) -> StoreError {
    let url = redact_url(&config.url);
    move |source| StoreError::BadUrl {
        url: url.clone(),
        source,
    }
}

/// The CA certificate of `FLINKQ_REDIS_CA_FILE`, if set.
fn certificates(config: &StoreConfig) -> Result<Option<redis::TlsCertificates>, StoreError> {
    let Some(path) = &config.ca_file else {
        return Ok(None);
    };
    let root_cert = std::fs::read(path).map_err(|source| StoreError::CaFile {
        path: path.clone(),
        source: Arc::new(source),
    })?;
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    }))
}

fn standalone_client(config: &StoreConfig) -> Result<redis::Client, StoreError> {
    match certificates(config)? {
        None => redis::Client::open(config.url.as_str()).map_err(bad_url(config)),
        Some(certs) => {
            redis::Client::build_with_tls(config.url.as_str(), certs).map_err(bad_url(config))
        }
    }
}

fn cluster_client(
    config: &StoreConfig,
    response_timeout: Duration,
) -> Result<redis::cluster::ClusterClient, StoreError> {
    let mut builder = redis::cluster::ClusterClient::builder(split_hosts(&config.url))
        .connection_timeout(config.connect_timeout)
        .response_timeout(response_timeout);
    if let Some(certs) = certificates(config)? {
        builder = builder.certs(certs);
    }
    builder.build().map_err(bad_url(config))
}

/// Sentinels from the URL's hosts; its credentials, db and TLS are the
/// primary's (Sentinels are reached with the URL's scheme, without them).
fn sentinel_client(config: &StoreConfig) -> Result<redis::sentinel::SentinelClient, StoreError> {
    use redis::IntoConnectionInfo;
    let hosts = split_hosts(&config.url);
    let mut sentinels = Vec::with_capacity(hosts.len());
    let mut primary_settings = None;
    for host in &hosts {
        let info = host
            .as_str()
            .into_connection_info()
            .map_err(bad_url(config))?;
        primary_settings
            .get_or_insert_with(|| (info.redis_settings().clone(), info.addr().clone()));
        sentinels.push(info.addr().clone());
    }
    let Some((settings, first)) = primary_settings else {
        return Err(bad_url(config)(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "no Sentinel address in the URL",
        ))));
    };
    let mut builder = SentinelClientBuilder::new(
        sentinels,
        &config.sentinel_master,
        SentinelServerType::Master,
    )
    .map_err(bad_url(config))?
    .set_client_to_redis_db(settings.db());
    if let Some(username) = settings.username() {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = settings.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if let redis::ConnectionAddr::TcpTls { .. } = first {
        builder = builder
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
        if let Some(certs) = certificates(config)? {
            builder = builder
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    }
    builder.build().map_err(bad_url(config))
}
