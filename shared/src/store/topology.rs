//! How the store reaches Redis: one node (`standalone`), the primary a group
//! of Sentinels names (`sentinel`), or a Redis Cluster (`cluster`).
//!
//! [`RedisConnection`] is the one connection type every store file uses: it
//! implements `redis::aio::ConnectionLike + Clone` whatever the topology, so
//! the rest of the store never asks which one it runs on.
//!
//! - standalone: the crate's `ConnectionManager` (reconnects to the one node).
//! - sentinel: a `ConnectionManager` to the primary the Sentinels name,
//!   replaced when the primary stops answering or answers `READONLY` (it was
//!   demoted): the Sentinels are asked again, and the new primary's address
//!   is verified (`ROLE`) before it is used.
//! - cluster: the crate's `cluster_async` connection: it learns the slot map
//!   from the seed nodes, follows `MOVED`/`ASK`, and routes each `EVALSHA` by
//!   its first key. Every script receives all its keys in `KEYS`, all under
//!   the namespace's hash tag (see `keys.rs`), so one namespace is one slot
//!   on one shard. The crate would send `SCRIPT LOAD` (no key) to every
//!   primary and fail it when any shard is down; here it goes to the
//!   primary of the namespace's slot, the node every `EVALSHA` of the store
//!   reaches, so the `NOSCRIPT` fallback of `Script::invoke_async` loads the
//!   script on the node that answered. A connection whose commands time
//!   out is replaced by a new one (see [`ClusterLink`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::sentinel::SentinelClient;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// Which Redis topology `FLINKQ_REDIS_URL` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisMode {
    /// One Redis node (or a managed endpoint that fails over behind one
    /// address).
    #[default]
    Standalone,
    /// The URL lists Sentinels; the primary is the one they name.
    Sentinel,
    /// The URL lists seed nodes of a Redis Cluster.
    Cluster,
}

impl RedisMode {
    /// Its name in `FLINKQ_REDIS_MODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisMode::Standalone => "standalone",
            RedisMode::Sentinel => "sentinel",
            RedisMode::Cluster => "cluster",
        }
    }
}

impl std::str::FromStr for RedisMode {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        match input {
            "standalone" => Ok(RedisMode::Standalone),
            "sentinel" => Ok(RedisMode::Sentinel),
            "cluster" => Ok(RedisMode::Cluster),
            other => Err(format!(
                "{other:?} is not a Redis mode: use standalone, sentinel or cluster"
            )),
        }
    }
}

impl std::fmt::Display for RedisMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which node serves this store's namespace, for the startup log and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// The one node (its URL, password redacted).
    Standalone {
        /// The URL.
        node: String,
    },
    /// The primary the Sentinels name.
    Sentinel {
        /// `FLINKQ_REDIS_SENTINEL_MASTER`.
        master_name: String,
        /// `host:port` of the primary in use.
        primary: String,
    },
    /// The cluster primary serving the namespace's hash slot.
    Cluster {
        /// The namespace's slot.
        slot: u16,
        /// `host:port` of the primary serving it.
        primary: String,
    },
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Topology::Standalone { node } => write!(f, "standalone {node}"),
            Topology::Sentinel {
                master_name,
                primary,
            } => write!(f, "sentinel master {master_name:?} at {primary}"),
            Topology::Cluster { slot, primary } => {
                write!(f, "cluster slot {slot} on primary {primary}")
            }
        }
    }
}

/// One Redis URL per host of a comma-separated list:
/// `redis://u:p@h1:1,h2:2/3` → `redis://u:p@h1:1/3`, `redis://u:p@h2:2/3`.
/// A URL naming one host gives itself.
pub fn split_hosts(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), authority),
    };
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    hosts
        .split(',')
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}://{userinfo}{host}{path}"))
        .collect()
}

/// The one connection type of the store, whatever the topology. Cheap to
/// clone; clones share the underlying connections.
#[derive(Clone)]
pub enum RedisConnection {
    /// One node.
    Standalone(ConnectionManager),
    /// The primary named by Sentinels.
    Sentinel(SentinelConnection),
    /// A Redis Cluster.
    Cluster(ClusterLink),
}

/// A cluster connection and the slot of the namespace it serves. The
/// crate's connection can wedge during a slot migration: its slot refresh
/// holds the slot map while the refresh itself keeps failing, and from then
/// on every command of that connection times out, even one to a healthy
/// node, while a fresh connection answers at once
/// (`redis_durability::slot_migration_mid_batch_leaves_nothing_stuck` saw
/// it about once in five runs). So a command that times out replaces the
/// connection with a new one from the same client (at most every
/// [`CLUSTER_REBUILD_SPACING`]); the command itself still fails, and its
/// caller treats it as unanswered, as any timeout.
#[derive(Clone)]
pub struct ClusterLink {
    shared: Arc<ClusterShared>,
    home: Slot,
}

struct ClusterShared {
    client: redis::cluster::ClusterClient,
    current: RwLock<Arc<ClusterHandle>>,
    /// Held while a new connection is made: one at a time, and the time of
    /// the last one, so a burst of timeouts rebuilds once.
    rebuilding: tokio::sync::Mutex<Option<Instant>>,
}

/// The connection in use and how many times it was replaced.
struct ClusterHandle {
    conn: ClusterConnection,
    generation: u64,
}

/// How often the cluster connection may be rebuilt while commands time out.
const CLUSTER_REBUILD_SPACING: Duration = Duration::from_secs(1);

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLink")
            .field("home", &self.home)
            .field("generation", &self.current().generation)
            .finish_non_exhaustive()
    }
}

impl ClusterLink {
    /// Connects `client`, for a store whose keys all hash like `home_key`.
    pub(crate) async fn connect(
        client: redis::cluster::ClusterClient,
        home_key: &str,
    ) -> RedisResult<ClusterLink> {
        let conn = client.get_async_connection().await?;
        Ok(ClusterLink {
            shared: Arc::new(ClusterShared {
                client,
                current: RwLock::new(Arc::new(ClusterHandle {
                    conn,
                    generation: 0,
                })),
                rebuilding: tokio::sync::Mutex::new(None),
            }),
            home: Slot::for_key(home_key),
        })
    }

    fn current(&self) -> Arc<ClusterHandle> {
        match self.shared.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let handle = self.current();
        let mut conn = handle.conn.clone();
        // `ROLE` (the readiness probe) and `SCRIPT LOAD` go to the
        // namespace's primary; everything else is routed by its keys
        let answer = if !is_script_load(cmd) && !is_role(cmd) {
            conn.req_packed_command(cmd).await
        } else {
            let home = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                Route::with_slot(self.home, SlotAddr::Master),
            ));
            conn.route_command(cmd.clone(), home).await
        };
        if answer.as_ref().is_err_and(redis::RedisError::is_timeout) {
            self.rebuild(handle.generation).await;
        }
        answer
    }

    async fn commands(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let handle = self.current();
        let mut conn = handle.conn.clone();
        let answer = conn.req_packed_commands(pipeline, offset, count).await;
        if answer.as_ref().is_err_and(redis::RedisError::is_timeout) {
            self.rebuild(handle.generation).await;
        }
        answer
    }

    /// Replaces connection `generation` with a new one, unless another
    /// caller already did or one was made less than
    /// [`CLUSTER_REBUILD_SPACING`] ago. A failure keeps the old one: the
    /// next timeout tries again.
    async fn rebuild(&self, generation: u64) {
        let mut last = self.shared.rebuilding.lock().await;
        if self.current().generation != generation
            || last.is_some_and(|at| at.elapsed() < CLUSTER_REBUILD_SPACING)
        {
            return;
        }
        *last = Some(Instant::now());
        match self.shared.client.get_async_connection().await {
            Ok(conn) => {
                let next = Arc::new(ClusterHandle {
                    conn,
                    generation: generation + 1,
                });
                match self.shared.current.write() {
                    Ok(mut current) => *current = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                tracing::warn!(
                    generation = generation + 1,
                    "Redis Cluster commands timed out: replaced the cluster connection with a new one"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "Redis Cluster commands timed out and a new cluster connection failed; trying again on the next timeout");
            }
        }
    }
}

/// Is `cmd` a `ROLE`?
fn is_role(cmd: &Cmd) -> bool {
    matches!(
        cmd.args_iter().next(),
        Some(redis::Arg::Simple(first)) if first.eq_ignore_ascii_case(b"ROLE")
    )
}

/// Is `cmd` a `SCRIPT LOAD`?
fn is_script_load(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter().map(|arg| match arg {
        redis::Arg::Simple(bytes) => bytes,
        _ => b"",
    });
    matches!(
        (args.next(), args.next()),
        (Some(first), Some(second))
            if first.eq_ignore_ascii_case(b"SCRIPT") && second.eq_ignore_ascii_case(b"LOAD")
    )
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self {
            RedisConnection::Standalone(_) => RedisMode::Standalone,
            RedisConnection::Sentinel(_) => RedisMode::Sentinel,
            RedisConnection::Cluster(_) => RedisMode::Cluster,
        };
        f.debug_tuple("RedisConnection").field(&mode).finish()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Standalone(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(link) => Box::pin(link.command(cmd)),
            RedisConnection::Sentinel(conn) => Box::pin(conn.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(link) => Box::pin(link.commands(pipeline, offset, count)),
            RedisConnection::Sentinel(conn) => Box::pin(conn.commands(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Standalone(conn) => conn.get_db(),
            RedisConnection::Cluster(link) => link.current().conn.get_db(),
            RedisConnection::Sentinel(conn) => conn.current().manager.get_db(),
        }
    }
}

/// Did this answer mean "not the primary (any more)" or "no answer"? Then
/// the Sentinels are asked again. `READONLY` comes as its own error kind from
/// a plain command and inside the message of a script's error.
fn calls_for_new_primary(error: &redis::RedisError) -> bool {
    is_readonly(error)
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// A write refused by a replica: nothing was applied.
pub(crate) fn is_readonly(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        || error.to_string().contains("READONLY")
}

fn is_readonly_value(value: &Value) -> bool {
    match value {
        Value::ServerError(error) => {
            error.kind() == Some(redis::ServerErrorKind::ReadOnly)
                || error.details().is_some_and(|d| d.contains("READONLY"))
                || error.code().contains("READONLY")
        }
        _ => false,
    }
}

/// The primary in use and when it was chosen.
struct Primary {
    manager: ConnectionManager,
    address: String,
    generation: u64,
}

struct SentinelShared {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    master_name: String,
    manager_config: ConnectionManagerConfig,
    current: RwLock<Arc<Primary>>,
    /// Held while the Sentinels are asked: one question at a time, and the
    /// time of the last one, so a burst of failing commands asks once.
    resolving: tokio::sync::Mutex<Option<Instant>>,
    /// Every `SCRIPT LOAD` that went through, replayed on a new primary
    /// before it is used: the script cache is not replicated, and a
    /// pipeline retried there after READONLY cannot fall back on NOSCRIPT.
    loads: std::sync::Mutex<Vec<Cmd>>,
}

/// A connection to the primary a group of Sentinels names, that asks them
/// again when the primary stops answering or turns out to be a replica.
#[derive(Clone)]
pub struct SentinelConnection {
    shared: Arc<SentinelShared>,
}

impl std::fmt::Debug for SentinelConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current();
        f.debug_struct("SentinelConnection")
            .field("master_name", &self.shared.master_name)
            .field("primary", &current.address)
            .field("generation", &current.generation)
            .finish_non_exhaustive()
    }
}

/// How often the Sentinels may be asked while the primary does not answer:
/// a failover takes seconds, asking more often only loads them.
const RESOLVE_SPACING: Duration = Duration::from_millis(200);

impl SentinelConnection {
    /// Asks the Sentinels for `master_name`'s primary and connects to it.
    pub(crate) async fn connect(
        mut sentinels: SentinelClient,
        master_name: String,
        manager_config: ConnectionManagerConfig,
    ) -> RedisResult<SentinelConnection> {
        let (manager, address) = resolve(&mut sentinels, &manager_config).await?;
        Ok(SentinelConnection {
            shared: Arc::new(SentinelShared {
                sentinels: tokio::sync::Mutex::new(sentinels),
                master_name,
                manager_config,
                current: RwLock::new(Arc::new(Primary {
                    manager,
                    address,
                    generation: 0,
                })),
                resolving: tokio::sync::Mutex::new(None),
                loads: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    fn current(&self) -> Arc<Primary> {
        match self.shared.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// `host:port` of the primary in use, and the Sentinels' name for it.
    pub(crate) fn primary(&self) -> (String, String) {
        (
            self.current().address.clone(),
            self.shared.master_name.clone(),
        )
    }

    /// The primary in use answered as a replica (`ROLE`): ask the
    /// Sentinels again (at most every [`RESOLVE_SPACING`]).
    pub(crate) async fn primary_demoted(&self) {
        let generation = self.current().generation;
        self.reresolve(generation).await;
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let primary = self.current();
        let mut manager = primary.manager.clone();
        let answer = manager.req_packed_command(cmd).await;
        if answer.is_ok() && is_script_load(cmd) {
            self.remember_load(cmd);
        }
        match answer {
            Err(error) if calls_for_new_primary(&error) => {
                let moved = self.reresolve(primary.generation).await;
                // READONLY: the old primary applied nothing, so the command
                // runs again on the new one. Any other failure may have
                // applied it: the caller decides (its error says unanswered).
                if moved && is_readonly(&error) {
                    let mut manager = self.current().manager.clone();
                    return manager.req_packed_command(cmd).await;
                }
                Err(error)
            }
            answer => answer,
        }
    }

    async fn commands(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let primary = self.current();
        let mut manager = primary.manager.clone();
        match manager.req_packed_commands(pipeline, offset, count).await {
            // A pipeline's errors come back as values: one READONLY means
            // the node is a replica, which applied none of the writes.
            Ok(values) if values.iter().any(is_readonly_value) => {
                if self.reresolve(primary.generation).await {
                    let mut manager = self.current().manager.clone();
                    return manager.req_packed_commands(pipeline, offset, count).await;
                }
                Ok(values)
            }
            Err(error) if calls_for_new_primary(&error) => {
                let moved = self.reresolve(primary.generation).await;
                if moved && is_readonly(&error) {
                    let mut manager = self.current().manager.clone();
                    return manager.req_packed_commands(pipeline, offset, count).await;
                }
                Err(error)
            }
            answer => answer,
        }
    }

    fn remember_load(&self, cmd: &Cmd) {
        let mut loads = match self.shared.loads.lock() {
            Ok(loads) => loads,
            Err(poisoned) => poisoned.into_inner(),
        };
        let packed = cmd.get_packed_command();
        if !loads
            .iter()
            .any(|known| known.get_packed_command() == packed)
        {
            loads.push(cmd.clone());
        }
    }

    /// Loads every script loaded so far on a new primary. A failure is
    /// left to the NOSCRIPT fallback (single calls) or the caller's retry
    /// (pipelines, which load their scripts first).
    async fn replay_loads(&self, manager: &mut ConnectionManager) {
        let loads = match self.shared.loads.lock() {
            Ok(loads) => loads.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for load in &loads {
            if let Err(error) = manager.req_packed_command(load).await {
                tracing::debug!(%error, "cannot load a script on the new primary yet");
                return;
            }
        }
    }

    /// Asks the Sentinels again unless someone already did since
    /// `generation` was in use (or did so moments ago). True when a primary
    /// newer than `generation` is in use afterwards.
    async fn reresolve(&self, generation: u64) -> bool {
        let mut last = self.shared.resolving.lock().await;
        if self.current().generation != generation {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < RESOLVE_SPACING) {
            return false;
        }
        *last = Some(Instant::now());
        let named = {
            let mut sentinels = self.shared.sentinels.lock().await;
            sentinels.async_get_client().await
        };
        let client = match named {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(master = %self.shared.master_name, %error, "no primary from the Sentinels yet");
                return false;
            }
        };
        let address = client.get_connection_info().addr().to_string();
        let previous = self.current();
        // Still the same primary (a slow answer, a dropped connection): its
        // connection manager reconnects by itself; a new one would only
        // add connections.
        if previous.address == address {
            return false;
        }
        let mut manager =
            match ConnectionManager::new_with_config(client, self.shared.manager_config.clone())
                .await
            {
                Ok(manager) => manager,
                Err(error) => {
                    tracing::debug!(%address, %error, "the new primary does not answer yet");
                    return false;
                }
            };
        self.replay_loads(&mut manager).await;
        tracing::warn!(
            master = %self.shared.master_name,
            from = %previous.address,
            to = %address,
            "Redis primary changed (Sentinel failover)"
        );
        let next = Arc::new(Primary {
            manager,
            address,
            generation: generation + 1,
        });
        match self.shared.current.write() {
            Ok(mut current) => *current = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        true
    }
}

/// The primary the Sentinels name now (checked with `ROLE` by the crate), and
/// a connection manager to it.
async fn resolve(
    sentinels: &mut SentinelClient,
    config: &ConnectionManagerConfig,
) -> RedisResult<(ConnectionManager, String)> {
    let client = sentinels.async_get_client().await?;
    let address = client.get_connection_info().addr().to_string();
    let manager = ConnectionManager::new_with_config(client, config.clone()).await?;
    Ok((manager, address))
}

#[cfg(test)]
mod tests {
    use super::{RedisMode, split_hosts};

    #[test]
    fn a_host_list_becomes_one_url_per_host_with_the_same_credentials_and_db() {
        assert_eq!(
            split_hosts("redis://u:p@h1:1,h2:2/3"),
            vec!["redis://u:p@h1:1/3", "redis://u:p@h2:2/3"]
        );
        assert_eq!(
            split_hosts("rediss://h1:1,h2:2"),
            vec!["rediss://h1:1", "rediss://h2:2"]
        );
        assert_eq!(split_hosts("redis://h:1"), vec!["redis://h:1"]);
    }

    #[test]
    fn modes_parse_by_name_only() {
        assert_eq!("sentinel".parse(), Ok(RedisMode::Sentinel));
        assert_eq!("cluster".parse(), Ok(RedisMode::Cluster));
        assert!("Cluster".parse::<RedisMode>().is_err());
    }
}
