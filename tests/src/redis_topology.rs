//! Replicated Redis topologies on loopback, from real processes: a plain
//! replica, a Sentinel group (a replica and three `redis-server --sentinel`
//! around a primary) and a three-master Redis Cluster (`--cluster-enabled
//! yes` nodes joined by `redis-cli --cluster create`), with or without a
//! replica per master. Everything is SIGKILLed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_harness::{RedisOptions, RedisServer, free_port};

/// The Sentinels' name of the primary in every group started here.
pub const MASTER_NAME: &str = "mymaster";

/// How long a topology may take to settle (replication link up, Sentinels
/// discovering each other, cluster state ok).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `redis-cli -p <port> <args>` and returns its trimmed stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn settle(what: &str, mut done: impl FnMut() -> bool) -> std::io::Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > SETTLE_TIMEOUT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{what} did not happen within {SETTLE_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Options of a node a replica may sync from: the full sync starts at
/// once, not after the 5 s Redis waits by default for more replicas to
/// share a diskless transfer.
pub fn replication_source() -> RedisOptions {
    RedisOptions {
        extra_args: vec!["--repl-diskless-sync-delay".into(), "0".into()],
        ..RedisOptions::default()
    }
}

/// Starts a replica of the primary on `primary_port` and waits until its
/// link to the primary is up (the initial sync done). It may serve
/// replicas of its own ([`replication_source`]).
pub fn start_replica(primary_port: u16) -> std::io::Result<RedisServer> {
    let mut options = replication_source();
    options.extra_args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        primary_port.to_string(),
    ]);
    let replica = RedisServer::start_with(options)?;
    settle("the replica's link to the primary", || {
        link_up(replica.port())
    })?;
    Ok(replica)
}

/// Is the replica on `port` linked to its primary?
fn link_up(port: u16) -> bool {
    redis_cli(port, &["INFO", "replication"]).contains("master_link_status:up")
}

/// One `redis-server --sentinel` process.
#[derive(Debug)]
struct SentinelProcess {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SentinelProcess {
    fn start(primary_port: u16) -> std::io::Result<SentinelProcess> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("sentinel.conf");
        // a quorum of 2 of 3; a primary silent for 1 s is down; a failover
        // that stalls is retried after 5 s
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir.path().display(),
                dir.path().join("sentinel.log").display(),
            ),
        )?;
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let sentinel = SentinelProcess { child, port, dir };
        settle("a Sentinel answering PING", || {
            redis_cli(port, &["PING"]) == "PONG"
        })?;
        Ok(sentinel)
    }
}

impl SentinelProcess {
    /// The last `lines` lines of its log.
    fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A replica and three Sentinels around a primary the caller started (and
/// may SIGKILL to make the Sentinels promote the replica).
#[derive(Debug)]
pub struct SentinelGroup {
    /// The replica of the primary: the one the Sentinels promote.
    pub replica: RedisServer,
    sentinels: Vec<SentinelProcess>,
    /// Replicas attached later ([`SentinelGroup::attach_replica`]).
    pub spares: Vec<RedisServer>,
}

impl SentinelGroup {
    /// Starts a replica of `primary` and three Sentinels monitoring it, and
    /// waits until the replica is in sync and every Sentinel knows the
    /// replica and the two other Sentinels (a failover needs both).
    pub fn start(primary: &RedisServer) -> std::io::Result<SentinelGroup> {
        let replica = start_replica(primary.port())?;
        let sentinels = (0..3)
            .map(|_| SentinelProcess::start(primary.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        for sentinel in &sentinels {
            settle("each Sentinel knowing the replica and its peers", || {
                let replicas = redis_cli(sentinel.port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                let peers = redis_cli(sentinel.port, &["SENTINEL", "SENTINELS", MASTER_NAME]);
                replicas.contains(&replica.port().to_string())
                    && sentinels_listed(&peers, &sentinels, sentinel.port) == 2
            })?;
        }
        Ok(SentinelGroup {
            replica,
            sentinels,
            spares: Vec::new(),
        })
    }

    /// Starts a fresh replica of the primary on `primary_port` and waits
    /// until it is in sync and every Sentinel lists it as a healthy replica
    /// (so the next failover can promote it). Returns its port.
    ///
    /// The Sentinels read a primary's replicas from its `INFO`, every 10 s:
    /// this may take that long. (`SENTINEL DEBUG info-period 1000` would
    /// make it a second, but then a spurious failover of the new primary on
    /// a loaded machine can promote this replica before it is listed.)
    pub fn attach_replica(&mut self, primary_port: u16) -> std::io::Result<u16> {
        let spare = start_replica(primary_port)?;
        let port = spare.port();
        self.spares.push(spare);
        self.wait_known(port)?;
        Ok(port)
    }

    /// Waits until every Sentinel lists the replica on `port` as healthy
    /// (so the next failover can promote it).
    pub fn wait_known(&self, port: u16) -> std::io::Result<()> {
        for sentinel in &self.sentinels {
            settle("each Sentinel listing the new replica as healthy", || {
                healthy_replica(
                    &redis_cli(sentinel.port, &["SENTINEL", "REPLICAS", MASTER_NAME]),
                    port,
                )
            })
            .map_err(|error| {
                // what this Sentinel believes, for a failure seen once in
                // many runs
                let replicas = redis_cli(sentinel.port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                let primary = redis_cli(
                    sentinel.port,
                    &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                );
                std::io::Error::new(
                    error.kind(),
                    format!(
                        "{error}: Sentinel {} names primary {} and replicas [{}]; its log ends:\n{}",
                        sentinel.port,
                        primary.replace('\n', ":"),
                        replicas.replace('\n', " "),
                        sentinel.log_tail(40)
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// The group's server (the first replica or a spare) on `port`.
    pub fn server_on(&mut self, port: u16) -> Option<&mut RedisServer> {
        std::iter::once(&mut self.replica)
            .chain(self.spares.iter_mut())
            .find(|server| server.port() == port)
    }

    /// `redis://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>`: the
    /// `FLINKQ_REDIS_URL` of `FLINKQ_REDIS_MODE=sentinel`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    /// The port of a Sentinel (the first), for `SENTINEL ...` commands.
    pub fn sentinel_port(&self) -> u16 {
        self.sentinels[0].port
    }

    /// The ports of all three Sentinels.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The port of the primary the first Sentinel names now.
    pub fn primary_port(&self) -> Option<u16> {
        let answer = redis_cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        );
        answer.lines().nth(1)?.trim().parse().ok()
    }
}

/// Does a `SENTINEL REPLICAS` answer (as redis-cli prints it: one field or
/// value per line, replica after replica) list the replica on `port` with
/// plain `slave` flags (not down, not disconnected)?
fn healthy_replica(answer: &str, port: u16) -> bool {
    let lines: Vec<&str> = answer.lines().map(str::trim).collect();
    let port = port.to_string();
    lines.split(|line| *line == "name").any(|replica| {
        let value = |field: &str| {
            replica
                .windows(2)
                .find(|pair| pair[0] == field)
                .map(|pair| pair[1])
        };
        value("port") == Some(port.as_str())
            && value("flags") == Some("slave")
            && value("master-link-status") == Some("ok")
    })
}

/// How many of `all` (but `own`) appear in a `SENTINEL SENTINELS` answer.
fn sentinels_listed(answer: &str, all: &[SentinelProcess], own: u16) -> usize {
    let ports: Vec<&str> = answer.lines().map(str::trim).collect();
    all.iter()
        .filter(|s| s.port != own && ports.contains(&s.port.to_string().as_str()))
        .count()
}

/// A Redis Cluster: masters, and one replica per master or none.
#[derive(Debug)]
pub struct RedisCluster {
    /// The masters besides the first (which the caller owns).
    pub others: Vec<RedisServer>,
    ports: Vec<u16>,
    /// The replicas, if any (one per master).
    pub replicas: Vec<RedisServer>,
}

impl RedisCluster {
    /// The options of a cluster node: start the first with these, then
    /// [`RedisCluster::start`] around it.
    pub fn node_options() -> RedisOptions {
        let mut options = replication_source();
        options.extra_args.extend([
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            "nodes.conf".into(),
            "--cluster-node-timeout".into(),
            "2000".into(),
        ]);
        options
    }

    /// Starts `masters - 1` more nodes, creates a cluster of them and
    /// `first` (slots split evenly), and waits until every node says the
    /// cluster is ok.
    pub fn start(first: &RedisServer, masters: usize) -> std::io::Result<RedisCluster> {
        RedisCluster::create(first, masters, false)
    }

    /// As [`RedisCluster::start`], with one replica per master, each in
    /// sync before this returns.
    pub fn start_replicated(first: &RedisServer, masters: usize) -> std::io::Result<RedisCluster> {
        RedisCluster::create(first, masters, true)
    }

    fn create(
        first: &RedisServer,
        masters: usize,
        replicated: bool,
    ) -> std::io::Result<RedisCluster> {
        let nodes = if replicated { 2 * masters } else { masters };
        let mut started = (1..nodes)
            .map(|_| RedisServer::start_with(RedisCluster::node_options()))
            .collect::<std::io::Result<Vec<_>>>()?;
        let all: Vec<u16> = std::iter::once(first.port())
            .chain(started.iter().map(RedisServer::port))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(all.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", if replicated { "1" } else { "0" }])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        for port in &all {
            settle("cluster_state:ok on every node", || {
                redis_cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            })?;
        }
        // redis-cli picks which nodes are replicas: ask each one (`ROLE`)
        let is_replica = |port: u16| redis_cli(port, &["ROLE"]).starts_with("slave");
        if is_replica(first.port()) {
            return Err(std::io::Error::other(
                "redis-cli made the first node a replica: the caller's node must be a master",
            ));
        }
        let (replicas, others): (Vec<RedisServer>, Vec<RedisServer>) =
            started.drain(..).partition(|node| is_replica(node.port()));
        for replica in &replicas {
            settle("each replica in sync with its master", || {
                link_up(replica.port())
            })?;
        }
        let ports = std::iter::once(first.port())
            .chain(others.iter().map(RedisServer::port))
            .collect();
        Ok(RedisCluster {
            others,
            ports,
            replicas,
        })
    }

    /// The replica of the master on `master_port`, if it has one.
    pub fn replica_of(&self, master_port: u16) -> Option<&RedisServer> {
        let wanted = format!("master_port:{master_port}");
        self.replicas.iter().find(|replica| {
            redis_cli(replica.port(), &["INFO", "replication"])
                .lines()
                .any(|line| line.trim() == wanted)
        })
    }

    /// The seed nodes: the `FLINKQ_REDIS_URL` of `FLINKQ_REDIS_MODE=cluster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    /// The ports of every master.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// How many scripts the node on `port` holds (`INFO memory`).
    pub fn cached_scripts(port: u16) -> u64 {
        redis_cli(port, &["INFO", "memory"])
            .lines()
            .find_map(|line| line.trim().strip_prefix("number_of_cached_scripts:"))
            .and_then(|n| n.parse().ok())
            .expect("INFO memory reports number_of_cached_scripts")
    }

    /// The node id of the master on `port` (`CLUSTER MYID`).
    pub fn node_id(port: u16) -> String {
        redis_cli(port, &["CLUSTER", "MYID"])
    }

    /// Moves `slot` and its keys from the master serving it to the master on
    /// `to`, as `redis-cli --cluster reshard` does for each slot it moves:
    /// `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the
    /// source, `MIGRATE` of the keys in batches of `batch`, then `SETSLOT
    /// NODE` on every master. Clients meanwhile get `ASK` (keys already
    /// moved) or `TRYAGAIN` (a multi-key call whose keys are split), then
    /// `MOVED`. Returns how many keys moved.
    pub fn migrate_slot(&self, slot: u16, to: u16, batch: usize) -> std::io::Result<usize> {
        let from = self.master_of(slot);
        let (from_id, to_id) = (RedisCluster::node_id(from), RedisCluster::node_id(to));
        let slot_arg = slot.to_string();
        let checked = |port: u16, args: &[&str]| -> std::io::Result<String> {
            let answer = redis_cli(port, args);
            if answer.starts_with("ERR") || answer.contains("ERR ") {
                return Err(std::io::Error::other(format!(
                    "{args:?} on {port}: {answer}"
                )));
            }
            Ok(answer)
        };
        checked(
            to,
            &["CLUSTER", "SETSLOT", &slot_arg, "IMPORTING", &from_id],
        )?;
        checked(
            from,
            &["CLUSTER", "SETSLOT", &slot_arg, "MIGRATING", &to_id],
        )?;
        let mut moved = 0;
        loop {
            let count = batch.to_string();
            let keys = checked(from, &["CLUSTER", "GETKEYSINSLOT", &slot_arg, &count])?;
            let keys: Vec<&str> = keys
                .lines()
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            if keys.is_empty() {
                break;
            }
            let to_port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &to_port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().copied());
            checked(from, &args)?;
            moved += keys.len();
        }
        for port in &self.ports {
            checked(*port, &["CLUSTER", "SETSLOT", &slot_arg, "NODE", &to_id])?;
        }
        Ok(moved)
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        redis_cli(self.ports[0], &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The port of the master serving `slot` (`CLUSTER SLOTS`, as redis-cli
    /// prints it: start, end, host, port, id, one per line).
    pub fn master_of(&self, slot: u16) -> u16 {
        let answer = redis_cli(self.ports[0], &["CLUSTER", "SLOTS"]);
        let lines: Vec<&str> = answer.lines().map(str::trim).collect();
        lines
            .windows(4)
            .find_map(|w| {
                let (start, end) = (w[0].parse::<u16>().ok()?, w[1].parse::<u16>().ok()?);
                let port = w[3].parse::<u16>().ok()?;
                (w[2] == "127.0.0.1" && (start..=end).contains(&slot)).then_some(port)
            })
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {answer}"))
    }
}

/// A Scenario's replicated Redis (besides the node in `Scenario::redis`).
#[derive(Debug)]
pub enum RedisTopology {
    /// `Scenario::redis` is the initial primary.
    Sentinel(SentinelGroup),
    /// `Scenario::redis` is the first master.
    Cluster(RedisCluster),
}

/// Which topology [`crate::scenario::Scenario::start_on`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopologyKind {
    /// A primary, a replica, three Sentinels.
    Sentinel,
    /// Three masters.
    Cluster,
    /// Three masters with one replica each.
    ReplicatedCluster,
}

impl RedisTopology {
    /// Builds `kind` around a first node it starts; returns both.
    pub fn start(kind: TopologyKind) -> std::io::Result<(RedisServer, RedisTopology)> {
        match kind {
            TopologyKind::Sentinel => {
                let primary = RedisServer::start_with(replication_source())?;
                let group = SentinelGroup::start(&primary)?;
                Ok((primary, RedisTopology::Sentinel(group)))
            }
            TopologyKind::Cluster => {
                let first = RedisServer::start_with(RedisCluster::node_options())?;
                let cluster = RedisCluster::start(&first, 3)?;
                Ok((first, RedisTopology::Cluster(cluster)))
            }
            TopologyKind::ReplicatedCluster => {
                let first = RedisServer::start_with(RedisCluster::node_options())?;
                let cluster = RedisCluster::start_replicated(&first, 3)?;
                Ok((first, RedisTopology::Cluster(cluster)))
            }
        }
    }

    /// `FLINKQ_REDIS_URL` for it.
    pub fn url(&self) -> String {
        match self {
            RedisTopology::Sentinel(group) => group.url(),
            RedisTopology::Cluster(cluster) => cluster.url(),
        }
    }

    /// `FLINKQ_REDIS_MODE` for it.
    pub fn mode(&self) -> flinkq_shared::store::RedisMode {
        match self {
            RedisTopology::Sentinel(_) => flinkq_shared::store::RedisMode::Sentinel,
            RedisTopology::Cluster(_) => flinkq_shared::store::RedisMode::Cluster,
        }
    }
}
