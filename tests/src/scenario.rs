//! `Scenario`: the usual end-to-end test bed in one call — a private
//! redis-server, the Flinks simulator, a work directory, a worker setup
//! polling at the given interval, and a store to watch the jobs.

use std::process::Output;
use std::time::Duration;

use flinkq_shared::store::{StateCounts, Store, StoreConfig};
use flinkq_shared::{JobSnapshot, LoginId, Priority, Product};

use crate::delay_proxy::DelayProxy;
use crate::redis_harness::{RedisOptions, RedisServer};
use crate::redis_topology::{RedisTopology, TopologyKind};
use crate::sim::{LoginStats, Script, SimConfig, SimHandle, Simulator};
use crate::worker_process::{WorkerProcess, WorkerSetup, flinkq_cli, flinkq_command, wait_for};

/// One test's world. Everything is torn down when it is dropped.
#[derive(Debug)]
pub struct Scenario {
    /// The private Redis; with a topology, its first node (the Sentinel
    /// group's initial primary, the cluster's first master).
    pub redis: RedisServer,
    /// The rest of a replicated Redis ([`Scenario::start_on`]): workers, the
    /// CLI and the store reach Redis through it.
    pub topology: Option<RedisTopology>,
    /// The simulator; polls closer than the interval are violations.
    pub sim: SimHandle,
    /// Results and logs live here.
    pub work: tempfile::TempDir,
    /// How workers of this scenario run (edit before spawning).
    pub setup: WorkerSetup,
    /// The store, in the setup's namespace.
    pub store: Store,
}

impl Scenario {
    /// A scenario whose workers poll every `interval`.
    pub async fn start(interval: Duration) -> Scenario {
        Scenario::start_with(interval, SimConfig::default()).await
    }

    /// The same, with a simulator configuration (its `min_poll_interval` is
    /// set to `interval`).
    pub async fn start_with(interval: Duration, sim_config: SimConfig) -> Scenario {
        Scenario::start_full(interval, sim_config, RedisOptions::default()).await
    }

    /// A scenario whose jobs time out after `poll_timeout`: the worker's
    /// limit and the simulator's idea of it agree, so a job that keeps
    /// answering 202 ends `timed_out` (a dead letter with `POLL_TIMEOUT`).
    pub async fn with_poll_timeout(interval: Duration, poll_timeout: Duration) -> Scenario {
        let mut world = Scenario::start_with(
            interval,
            SimConfig {
                poll_timeout,
                ..SimConfig::default()
            },
        )
        .await;
        world.setup.poll_timeout = poll_timeout;
        world
    }

    /// The same, with Redis options too (AOF, a password...).
    pub async fn start_full(
        interval: Duration,
        sim_config: SimConfig,
        redis: RedisOptions,
    ) -> Scenario {
        let redis = RedisServer::start_with(redis).expect("redis-server");
        Scenario::assemble(interval, sim_config, redis, None).await
    }

    /// A scenario on a replicated Redis: a Sentinel group or a three-master
    /// cluster. Workers (via `FLINKQ_REDIS_MODE`), the CLI and the store all
    /// use it; `redis` is its first node.
    pub async fn start_on(interval: Duration, kind: TopologyKind) -> Scenario {
        let (redis, topology) = RedisTopology::start(kind).expect("redis topology");
        Scenario::assemble(interval, SimConfig::default(), redis, Some(topology)).await
    }

    async fn assemble(
        interval: Duration,
        sim_config: SimConfig,
        redis: RedisServer,
        topology: Option<RedisTopology>,
    ) -> Scenario {
        let sim = Simulator::start(SimConfig {
            min_poll_interval: interval,
            ..sim_config
        })
        .await
        .expect("simulator");
        let work = tempfile::tempdir().expect("tempdir");
        let redis_url = topology
            .as_ref()
            .map_or_else(|| redis.url(), RedisTopology::url);
        let mut setup = WorkerSetup {
            poll_interval: interval,
            ..WorkerSetup::new(
                &redis_url,
                &sim.banking_base_url(),
                &sim.wealth_base_url(),
                work.path(),
            )
        };
        if let Some(topology) = &topology {
            setup
                .extra_env
                .push(("FLINKQ_REDIS_MODE".into(), topology.mode().to_string()));
        }
        let store_config = store_config_for(&redis, topology.as_ref(), &setup.namespace);
        let store = Store::connect(&store_config).await.expect("store");
        Scenario {
            redis,
            topology,
            sim,
            work,
            setup,
            store,
        }
    }

    /// How to reach this scenario's Redis (whatever its topology) in
    /// `namespace`.
    pub fn store_config(&self, namespace: &str) -> StoreConfig {
        store_config_for(&self.redis, self.topology.as_ref(), namespace)
    }

    /// `n` random logins, all scripted with `script` in the simulator.
    pub fn logins(&self, n: usize, script: &Script) -> Vec<LoginId> {
        let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
        self.sim.set_scripts(
            logins
                .iter()
                .map(|login| (login.to_string(), script.clone())),
        );
        logins
    }

    /// Enqueues `logins` in `batch` straight through the store, for the
    /// default product.
    pub async fn enqueue(&self, batch: &str, logins: &[LoginId]) {
        self.enqueue_product(batch, Product::DEFAULT, logins).await;
    }

    /// Enqueues `logins` in `batch` for `product`, straight through the store.
    pub async fn enqueue_product(&self, batch: &str, product: Product, logins: &[LoginId]) {
        self.store
            .enqueue_with(batch, Priority::Normal, product, logins)
            .await
            .expect("enqueue");
    }

    /// Waits until every job of `batch` is finished; returns its counts.
    pub async fn wait_finished(&self, batch: &str, timeout: Duration) -> StateCounts {
        wait_for(&format!("batch {batch} to finish"), timeout, async || {
            let counts = self.store.counts(Some(batch)).await.ok()?;
            (counts.total > 0 && counts.unfinished() == 0).then_some(counts)
        })
        .await
    }

    /// One login scripted with `script`, enqueued in batch `one` and run to
    /// its end by one worker started with `extra_env`. Returns the worker
    /// (still running), the finished job and what the simulator saw of it.
    pub async fn run_one(
        &mut self,
        script: &Script,
        extra_env: &[(&str, &str)],
    ) -> (WorkerProcess, JobSnapshot, LoginStats) {
        self.setup.extra_env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let login = self.logins(1, script)[0];
        self.enqueue("one", &[login]).await;
        let worker = WorkerProcess::spawn(&self.setup);
        self.wait_finished("one", Duration::from_secs(60)).await;
        let job = self.job_of(&login).await;
        let stats = self.sim.login_stats(&login.to_string());
        (worker, job, stats)
    }

    /// Waits until the simulator has seen at least `polls` /Investments
    /// calls of every login in `logins`.
    pub async fn wait_polled(&self, logins: &[LoginId], polls: u32, timeout: Duration) {
        wait_for(
            &format!("{polls} polls of every login"),
            timeout,
            async || {
                logins
                    .iter()
                    .all(|login| {
                        self.sim.login_stats(&login.to_string()).investments_calls >= polls
                    })
                    .then_some(())
            },
        )
        .await;
    }

    /// Puts a [`DelayProxy`] between Redis and the workers spawned from now
    /// on (the scenario's own store stays direct, so a test can watch
    /// Redis while the workers' link is slow).
    pub async fn redis_through_proxy(&mut self) -> DelayProxy {
        let proxy = DelayProxy::start(("127.0.0.1", self.redis.port()))
            .await
            .expect("delay proxy to redis");
        self.setup.redis_url = self.setup.redis_url.replace(
            &format!("127.0.0.1:{}", self.redis.port()),
            &proxy.addr().to_string(),
        );
        proxy
    }

    /// Puts a [`DelayProxy`] between the simulator and the workers spawned
    /// from now on: a slow Flinks.
    pub async fn flinks_through_proxy(&mut self) -> DelayProxy {
        let proxy = DelayProxy::start(self.sim.addr())
            .await
            .expect("delay proxy to the simulator");
        let through =
            |url: &str| url.replace(&self.sim.base_url(), &format!("http://{}", proxy.addr()));
        self.setup.flinks_url = through(&self.sim.banking_base_url());
        self.setup.wealth_url = through(&self.sim.wealth_base_url());
        proxy
    }

    /// Runs the `flinkq` CLI against this scenario's Redis (its topology
    /// if it has one) and namespace.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_input(args, None)
    }

    /// The same, feeding `stdin` to the command.
    pub fn cli_with_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        match &self.topology {
            None => flinkq_cli(&self.redis.url(), &self.setup.namespace, args, stdin),
            Some(topology) => {
                assert!(stdin.is_none(), "stdin is not wired for topologies yet");
                flinkq_command(&topology.url(), &self.setup.namespace)
                    .env("FLINKQ_REDIS_MODE", topology.mode().to_string())
                    .args(args)
                    .output()
                    .expect("run flinkq")
            }
        }
    }

    /// Where the files sink stores `login`'s payload of `product`.
    pub fn result_path(&self, login: &LoginId, product: Product) -> std::path::PathBuf {
        self.setup.result_file(product, login)
    }

    /// The newest job of `login` for the default product (panics if it
    /// has none).
    pub async fn job_of(&self, login: &LoginId) -> JobSnapshot {
        self.job_of_product(login, Product::DEFAULT).await
    }

    /// The newest job of `login` for `product` (panics if it has none).
    pub async fn job_of_product(&self, login: &LoginId, product: Product) -> JobSnapshot {
        self.store
            .job_for_login(login, product)
            .await
            .expect("read the login's job")
            .unwrap_or_else(|| panic!("login {login} has no {product} job"))
    }
}

fn store_config_for(
    redis: &RedisServer,
    topology: Option<&RedisTopology>,
    namespace: &str,
) -> StoreConfig {
    match topology {
        None => {
            let ca = redis.ca_cert();
            StoreConfig {
                ca_file: ca.exists().then_some(ca),
                ..StoreConfig::new(redis.url(), namespace)
            }
        }
        Some(topology) => StoreConfig {
            mode: topology.mode(),
            ..StoreConfig::new(topology.url(), namespace)
        },
    }
}
