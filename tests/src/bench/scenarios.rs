//! The four scenarios: enqueue, drain, hold, recover.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use flinkq_shared::LoginId;
use flinkq_shared::store::{Store, StoreConfig};

use super::bullmq::BullmqFigures;
use super::redis_stats::{
    calls_of, command_calls, command_costs, cost_table, delta, process_cpu_seconds,
    redis_cpu_seconds, used_memory,
};
use super::report::Report;
use super::yardsticks::Yardsticks;
use crate::redis_harness::RedisServer;
use crate::sim::{Fault, Script, ScriptedFault, SimConfig, SimHandle, Simulator};
use crate::worker_process::{WorkerProcess, WorkerSetup, flinkq_cli};

/// The BullMQ yardstick's name in ratios.
const BULLMQ: &str = "BullMQ 2w undici";

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// `flinkq enqueue --file` of many loginIds.
    Enqueue,
    /// Jobs with 2 pending answers each, poll interval 0: steps/s end to end.
    Drain,
    /// Many jobs polling every second: lateness, worker RSS, Redis memory.
    Hold,
    /// SIGKILL a worker holding many leases: time until they all run again.
    Recover,
}

/// Sizes of each scenario.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Logins enqueued.
    pub enqueue: usize,
    /// Jobs drained.
    pub drain: usize,
    /// Jobs held polling.
    pub hold_jobs: usize,
    /// How long they poll.
    pub hold_for: Duration,
    /// Leases held at the kill.
    pub recover: usize,
}

impl Sizes {
    /// The sizes of issue 6.
    pub fn full() -> Self {
        Sizes {
            enqueue: 100_000,
            drain: 50_000,
            hold_jobs: 10_000,
            hold_for: Duration::from_secs(60),
            recover: 1_000,
        }
    }

    /// CI smoke sizes: every code path, seconds of work.
    pub fn smoke() -> Self {
        Sizes {
            enqueue: 2_000,
            drain: 300,
            hold_jobs: 100,
            hold_for: Duration::from_secs(3),
            recover: 50,
        }
    }
}

/// One scenario's private redis-server, simulator and store.
pub(super) struct World {
    pub(super) redis: RedisServer,
    pub(super) sim: SimHandle,
    pub(super) store: Store,
}

pub(super) async fn world(sim: SimConfig) -> World {
    let redis = RedisServer::start().expect("redis-server");
    let sim = Simulator::start(sim).await.expect("simulator");
    let store = Store::connect(&StoreConfig::new(redis.url(), "bench"))
        .await
        .expect("store");
    World { redis, sim, store }
}

fn setup(world: &World, work: &Path, name: &str) -> WorkerSetup {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).expect("work dir");
    WorkerSetup {
        namespace: "bench".into(),
        lease: Duration::from_secs(10),
        concurrency: 256,
        extra_env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("FLINKQ_CLAIM_BATCH".into(), "256".into()),
        ],
        ..WorkerSetup::new(
            &world.redis.url(),
            &world.sim.banking_base_url(),
            &world.sim.wealth_base_url(),
            &dir,
        )
    }
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < timeout,
            "benchmark stuck: {what} not done after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What every login of the drain answers (the BullMQ yardstick's too): two
/// 202s, then the 200 — four steps per job.
pub(super) fn drain_script() -> Script {
    Script::pending(2)
}

pub(super) fn scripted(sim: &SimHandle, logins: &[LoginId], script: &Script) {
    sim.set_scripts(
        logins
            .iter()
            .map(|login| (login.to_string(), script.clone())),
    );
}

/// Runs one scenario, adding its figures to `report`.
pub async fn run_scenario(
    scenario: Scenario,
    sizes: &Sizes,
    yard: &Yardsticks,
    report: &mut Report,
    work: &Path,
) {
    match scenario {
        Scenario::Enqueue => enqueue(sizes.enqueue, yard, report, work).await,
        Scenario::Drain => drain(sizes.drain, yard, report, work).await,
        Scenario::Hold => hold(sizes.hold_jobs, sizes.hold_for, report, work).await,
        Scenario::Recover => recover(sizes.recover, report, work).await,
    }
}

async fn enqueue(n: usize, yard: &Yardsticks, report: &mut Report, work: &Path) {
    let w = world(SimConfig::default()).await;
    let file = work.join("enqueue-logins.txt");
    let text: String = (0..n).map(|_| format!("{}\n", LoginId::random())).collect();
    std::fs::write(&file, text).expect("write logins");
    let mut conn = w.store.connection();
    let (before, memory_before) = (command_calls(&mut conn).await, used_memory(&mut conn).await);
    let redis_before = redis_cpu_seconds(&mut conn).await;
    let started = Instant::now();
    let out = flinkq_cli(
        &w.redis.url(),
        "bench",
        &[
            "enqueue",
            "--batch",
            "bench",
            "--json",
            "--file",
            file.to_str().expect("path"),
        ],
        None,
    );
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "enqueue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("enqueue --json");
    assert_eq!(summary["enqueued"].as_u64(), Some(n as u64));
    let commands = delta(&before, &command_calls(&mut conn).await);
    let redis_cpu = redis_cpu_seconds(&mut conn).await - redis_before;
    let rate = n as f64 / elapsed;
    report.add_vs_each(
        "enqueue",
        "logins/s (incl. dedupe)",
        rate,
        "1/s",
        &[
            yard.set_pipelined.map(|v| ("redis SET -P16", v)),
            yard.apalis_push.map(|v| ("apalis-redis push", v)),
            yard.bullmq
                .as_ref()
                .map(|b| ("BullMQ addBulk", b.enqueue_logins_per_s)),
        ],
    );
    report.add_vs(
        "enqueue",
        "Redis commands/s",
        commands.all as f64 / elapsed,
        "1/s",
        yard.set_pipelined.map(|v| ("redis SET -P16", v)),
    );
    // Redis is the bound of an enqueue (it runs near 100% busy): its time
    // per login is the figure the data model sets
    report.add(
        "enqueue",
        "Redis CPU per login",
        redis_cpu * 1e6 / n as f64,
        "µs",
    );
    report.add(
        "enqueue",
        "Redis commands per login (incl. in scripts)",
        commands.all as f64 / n as f64,
        "cmds",
    );
    report.add(
        "enqueue",
        "round trips per 1,000 logins",
        commands.round_trips as f64 * 1_000.0 / n as f64,
        "calls",
    );
    let memory = used_memory(&mut conn).await.saturating_sub(memory_before);
    report.add(
        "enqueue",
        "Redis memory per queued job",
        memory as f64 / n as f64,
        "bytes",
    );
}

async fn drain(n: usize, yard: &Yardsticks, report: &mut Report, work: &Path) {
    let w = world(SimConfig::default()).await;
    let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
    scripted(&w.sim, &logins, &drain_script());
    w.store.enqueue("bench", &logins).await.expect("enqueue");
    let mut setup = setup(&w, work, "drain");
    // as fast as the worker allows: it refuses a zero interval (10 ms minimum)
    setup.poll_interval = Duration::from_millis(10);
    let mut conn = w.store.connection();
    let costs_before = command_costs(&mut conn).await;
    let before = calls_of(&costs_before);
    let cpu = CpuShare::start(&mut conn).await;
    let started = Instant::now();
    let mut worker = WorkerProcess::spawn(&setup);
    let mut polls = 0u64; // one HGETALL each, the harness' own commands
    wait_until("drain", Duration::from_secs(1_800), async || {
        polls += 1;
        w.store
            .counts(None)
            .await
            .is_ok_and(|c| c.unfinished() == 0)
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let used = cpu
        .report(report, "drain", &mut conn, &worker, elapsed)
        .await;
    worker.sigterm(Duration::from_secs(30));
    let costs_after = command_costs(&mut conn).await;
    let commands = delta(&before, &calls_of(&costs_after)).without_harness(polls);
    let counts = w.store.counts(None).await.expect("counts");
    assert_eq!(counts.succeeded, n as u64, "every drained job succeeded");
    let totals = w.sim.totals();
    // Authorize + 2 pending polls + the 200, as the simulator counted them
    let steps = (totals.authorize_calls + totals.product_calls) as f64;
    // where Redis' time went, for the reader of a run (not a figure: Redis'
    // own timing of each command, which adds to what INFO cpu counts)
    eprintln!(
        "drain: Redis time per step by command (INFO commandstats)\n{}",
        cost_table(&costs_before, &costs_after, steps)
    );
    let bullmq = yard.bullmq.as_ref();
    let vs_bullmq = |pick: fn(&BullmqFigures) -> f64| bullmq.map(|b| (BULLMQ, pick(b)));
    report.add_vs_each(
        "drain",
        "steps/s end to end",
        steps / elapsed,
        "1/s",
        &[
            yard.evalsha.map(|v| ("redis EVALSHA", v)),
            vs_bullmq(|b| b.steps_per_s),
        ],
    );
    report.add_vs(
        "drain",
        "jobs/s end to end",
        n as f64 / elapsed,
        "1/s",
        yard.apalis_e2e.map(|v| ("apalis-redis e2e", v)),
    );
    report.add_vs(
        "drain",
        "worker CPU per step",
        used.worker / steps * 1e6,
        "µs",
        vs_bullmq(|b| b.worker_cpu_us_per_step),
    );
    report.add_vs(
        "drain",
        "Redis CPU per step",
        used.redis / steps * 1e6,
        "µs",
        vs_bullmq(|b| b.redis_cpu_us_per_step),
    );
    report.add_vs(
        "drain",
        "Redis round trips per step",
        commands.round_trips as f64 / steps,
        "calls",
        vs_bullmq(|b| b.round_trips_per_step),
    );
    report.add_vs(
        "drain",
        "Redis commands per step (incl. in scripts)",
        commands.all as f64 / steps,
        "cmds",
        vs_bullmq(|b| b.commands_per_step),
    );
    if let Some(b) = bullmq {
        bullmq_figures(report, b);
    }
}

/// The BullMQ yardstick's run, as rows of its own.
fn bullmq_figures(report: &mut Report, b: &BullmqFigures) {
    let rows = [
        (
            "enqueue logins/s (node enqueue.js)",
            b.enqueue_logins_per_s,
            "1/s",
        ),
        ("steps/s end to end", b.steps_per_s, "1/s"),
        ("jobs/s end to end", b.jobs_per_s, "1/s"),
        ("worker CPU per step", b.worker_cpu_us_per_step, "µs"),
        ("Redis CPU per step", b.redis_cpu_us_per_step, "µs"),
        (
            "Redis round trips per step",
            b.round_trips_per_step,
            "calls",
        ),
        (
            "Redis commands per step (incl. in scripts)",
            b.commands_per_step,
            "cmds",
        ),
    ];
    for (metric, value, unit) in rows {
        report.add("bullmq", metric, value, unit);
    }
}

/// Where the CPU went during a scenario: the worker process, this process
/// (the simulator and the harness) and Redis, in cores.
struct CpuShare {
    redis: f64,
    bench: f64,
}

impl CpuShare {
    async fn start(conn: &mut flinkq_shared::store::RedisConnection) -> Self {
        CpuShare {
            redis: redis_cpu_seconds(conn).await,
            bench: process_cpu_seconds("self"),
        }
    }

    async fn report(
        self,
        report: &mut Report,
        scenario: &str,
        conn: &mut flinkq_shared::store::RedisConnection,
        worker: &WorkerProcess,
        elapsed: f64,
    ) -> CpuUsed {
        self.report_since(report, scenario, conn, worker, 0.0, elapsed)
            .await
    }

    async fn report_since(
        self,
        report: &mut Report,
        scenario: &str,
        conn: &mut flinkq_shared::store::RedisConnection,
        worker: &WorkerProcess,
        worker_before: f64,
        elapsed: f64,
    ) -> CpuUsed {
        let worker_cpu = process_cpu_seconds(&worker.pid().to_string()) - worker_before;
        let bench = process_cpu_seconds("self") - self.bench;
        let redis = redis_cpu_seconds(conn).await - self.redis;
        report.add(scenario, "CPU: worker", worker_cpu / elapsed, "cores");
        report.add(
            scenario,
            "CPU: simulator + harness",
            bench / elapsed,
            "cores",
        );
        report.add(scenario, "CPU: redis-server", redis / elapsed, "cores");
        CpuUsed {
            worker: worker_cpu,
            redis,
        }
    }
}

/// CPU seconds used over a scenario's window.
struct CpuUsed {
    worker: f64,
    redis: f64,
}

/// Quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn hold(n: usize, hold_for: Duration, report: &mut Report, work: &Path) {
    let interval = Duration::from_secs(1);
    let w = world(SimConfig::default()).await;
    let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
    scripted(&w.sim, &logins, &Script::always_pending());
    let mut conn = w.store.connection();
    let memory_before = used_memory(&mut conn).await;
    w.store.enqueue("bench", &logins).await.expect("enqueue");
    let mut setup = setup(&w, work, "hold");
    setup.poll_interval = interval;
    setup.poll_timeout = hold_for * 10;
    setup.concurrency = 1_024;
    let mut worker = WorkerProcess::spawn(&setup);
    // every job is polling; then measure over the hold window
    wait_until("all jobs polling", Duration::from_secs(300), async || {
        w.store
            .counts(None)
            .await
            .is_ok_and(|c| c.polling == n as u64)
    })
    .await;
    let window_start = Instant::now();
    let cpu = CpuShare::start(&mut conn).await;
    let cpu_worker_before = process_cpu_seconds(&worker.pid().to_string());
    tokio::time::sleep(hold_for).await;
    cpu.report_since(
        report,
        "hold",
        &mut conn,
        &worker,
        cpu_worker_before,
        hold_for.as_secs_f64(),
    )
    .await;
    let memory = used_memory(&mut conn).await.saturating_sub(memory_before);
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", worker.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    worker.sigterm(Duration::from_secs(30));
    // lateness: how much longer than the interval each gap between two polls
    // of one job was, for polls inside the window
    let mut late_ms: Vec<f64> = Vec::new();
    for login in &logins {
        let times = w.sim.login_stats(&login.to_string()).investments_times;
        for pair in times.windows(2) {
            if pair[0] >= window_start {
                let gap = pair[1].saturating_duration_since(pair[0]);
                late_ms.push(gap.saturating_sub(interval).as_secs_f64() * 1_000.0);
            }
        }
    }
    late_ms.sort_by(f64::total_cmp);
    report.add("hold", "polls measured", late_ms.len() as f64, "polls");
    report.add("hold", "poll lateness p50", quantile(&late_ms, 0.5), "ms");
    report.add("hold", "poll lateness p99", quantile(&late_ms, 0.99), "ms");
    report.add(
        "hold",
        "poll lateness max",
        late_ms.last().copied().unwrap_or(0.0),
        "ms",
    );
    report.add("hold", "worker RSS", rss_kib / 1024.0, "MiB");
    report.add(
        "hold",
        "Redis memory per waiting job",
        memory as f64 / n as f64,
        "bytes",
    );
}

async fn recover(n: usize, report: &mut Report, work: &Path) {
    let w = world(SimConfig::default()).await;
    let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
    // the first Authorize of every login hangs: the worker holds n leases
    scripted(
        &w.sim,
        &logins,
        &Script {
            faults: vec![ScriptedFault::authorize(1, Fault::Slow { millis: 600_000 })],
            ..Script::default()
        },
    );
    w.store.enqueue("bench", &logins).await.expect("enqueue");
    let mut setup = setup(&w, work, "recover");
    setup.concurrency = n as u32;
    // the hung calls time out after one lease at the latest (the worker
    // refuses a longer FLINKQ_HTTP_TIMEOUT); the kill comes well before
    let lease = setup.lease;
    let mut victim = WorkerProcess::spawn(&setup);
    wait_until("every lease held", Duration::from_secs(120), async || {
        w.sim.totals().authorize_calls >= n as u64
    })
    .await;
    victim.sigkill();
    let killed = Instant::now();
    let _successor = WorkerProcess::spawn(&setup);
    wait_until("every step to run again", lease * 6, async || {
        w.sim.totals().authorize_calls >= 2 * n as u64
    })
    .await;
    let seconds = killed.elapsed().as_secs_f64();
    report.add_vs(
        "recover",
        &format!("seconds until {n} killed steps rerun"),
        seconds,
        "s",
        Some(("apalis-redis default (300 s)", 300.0)),
    );
    report.add("recover", "lease period", lease.as_secs_f64(), "s");
}
