//! `Scenario`: the usual end-to-end test bed in one call — a private
//! redis-server, the Flinks simulator, a work directory, a worker setup
//! polling at the given interval, and a store to watch the jobs.

use std::process::Output;
use std::time::Duration;

use flinkq_shared::store::{StateCounts, Store, StoreConfig};
use flinkq_shared::{JobSnapshot, LoginId};

use crate::delay_proxy::DelayProxy;
use crate::redis_harness::{RedisOptions, RedisServer};
use crate::sim::{LoginStats, Script, SimConfig, SimHandle, Simulator};
use crate::worker_process::{WorkerProcess, WorkerSetup, flinkq_cli, wait_for};

/// One test's world. Everything is torn down when it is dropped.
#[derive(Debug)]
pub struct Scenario {
    /// The private Redis.
    pub redis: RedisServer,
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

    /// The same, with Redis options too (AOF, a password...).
    pub async fn start_full(
        interval: Duration,
        sim_config: SimConfig,
        redis: RedisOptions,
    ) -> Scenario {
        let redis = RedisServer::start_with(redis).expect("redis-server");
        let sim = Simulator::start(SimConfig {
            min_poll_interval: interval,
            ..sim_config
        })
        .await
        .expect("simulator");
        let work = tempfile::tempdir().expect("tempdir");
        let setup = WorkerSetup {
            poll_interval: interval,
            ..WorkerSetup::new(
                &redis.url(),
                &sim.banking_base_url(),
                &sim.wealth_base_url(),
                work.path(),
            )
        };
        let ca = redis.ca_cert();
        let store_config = StoreConfig {
            ca_file: ca.exists().then_some(ca),
            ..StoreConfig::new(redis.url(), &setup.namespace)
        };
        let store = Store::connect(&store_config).await.expect("store");
        Scenario {
            redis,
            sim,
            work,
            setup,
            store,
        }
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

    /// Enqueues `logins` in `batch` straight through the store.
    pub async fn enqueue(&self, batch: &str, logins: &[LoginId]) {
        self.store.enqueue(batch, logins).await.expect("enqueue");
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

    /// Runs the `flinkq` CLI against this scenario's Redis and namespace.
    pub fn cli(&self, args: &[&str]) -> Output {
        flinkq_cli(&self.redis.url(), &self.setup.namespace, args, None)
    }

    /// The newest job of `login` (panics if it has none).
    pub async fn job_of(&self, login: &LoginId) -> JobSnapshot {
        self.store
            .job_for_login(login)
            .await
            .expect("read the login's job")
            .unwrap_or_else(|| panic!("login {login} has no job"))
    }
}
