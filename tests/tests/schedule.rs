//! `flinkq schedule`: real scheduler processes against a private Redis, on a
//! 2-second cron so a few ticks pass in seconds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_shared::store::{
    RunKind, SCHEDULE_RUNS_KEPT, Store, StoreConfig, TickClaim, TickRequest,
};
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::worker_process::{
    FlinkqProcess, flinkq_cli, flinkq_command, free_port, wait_for,
};
use redis::AsyncCommands;

const NAMESPACE: &str = "sched";
const EVERY_2S: &str = "*/2 * * * * *";
const TICK_MS: u64 = 2_000;

/// A running `flinkq schedule` replica (SIGKILLed when dropped).
struct Scheduler {
    process: FlinkqProcess,
}

impl Scheduler {
    fn spawn(redis: &RedisServer, dir: &Path, replica: &str) -> Scheduler {
        let mut command = flinkq_command(&redis.url(), NAMESPACE);
        command
            .env("FLINKQ_SCHEDULE_REPLICA", replica)
            .env("RUST_LOG", "info")
            .args(["schedule", "--cron", EVERY_2S, "--tz", "America/Toronto"]);
        Scheduler {
            process: FlinkqProcess::spawn(command, dir, replica),
        }
    }

    fn sigterm(&mut self) -> ExitStatus {
        match self.process.sigterm(Duration::from_secs(10)) {
            Some(status) => status,
            None => panic!("flinkq schedule ignored SIGTERM for 10 s:\n{}", self.log()),
        }
    }

    fn sigkill(&mut self) {
        self.process.sigkill();
    }

    /// The `tick …` lines printed so far.
    fn lines(&self) -> Vec<String> {
        self.process.stdout().lines().map(str::to_owned).collect()
    }

    fn log(&self) -> String {
        self.process.stderr()
    }
}

/// One `schedule:run:<tick>` record.
#[derive(Debug)]
struct Run {
    tick: u64,
    fields: HashMap<String, String>,
}

impl Run {
    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    fn count(&self, field: &str) -> u64 {
        self.get(field).parse().unwrap_or(u64::MAX)
    }
}

async fn start() -> (RedisServer, Store, tempfile::TempDir) {
    let redis = RedisServer::start().expect("redis-server");
    let store = Store::connect(&StoreConfig::new(redis.url(), NAMESPACE))
        .await
        .expect("store");
    (redis, store, tempfile::tempdir().expect("tempdir"))
}

async fn register(store: &Store, n: usize) {
    let logins: Vec<LoginId> = (0..n).map(|_| LoginId::random()).collect();
    assert_eq!(store.register(&logins).await.expect("register"), n as u64);
}

/// Every run record, by tick.
async fn runs(store: &Store) -> Vec<Run> {
    let mut conn = store.connection();
    let ticks: Vec<u64> = conn
        .zrange(store.keys().schedule_runs(), 0, -1)
        .await
        .expect("ZRANGE schedule:runs");
    let mut runs = Vec::new();
    for tick in ticks {
        let fields: HashMap<String, String> = conn
            .hgetall(store.keys().schedule_run(tick))
            .await
            .expect("HGETALL run");
        runs.push(Run { tick, fields });
    }
    runs
}

/// Runs whose refresh completed.
async fn done(store: &Store) -> Vec<Run> {
    runs(store)
        .await
        .into_iter()
        .filter(|r| r.get("state") == "done")
        .collect()
}

/// The batch of a tick, as every replica names it.
fn batch_of(tick: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(tick);
    let stamp = humantime::format_rfc3339_seconds(t).to_string();
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("nightly-{compact}")
}

/// Batch name -> how many printed lines name it, over every output.
fn printed_batches(outputs: &[Vec<String>]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in outputs.iter().flatten() {
        assert!(line.starts_with("tick "), "unexpected output {line:?}");
        let batch = line
            .rsplit_once("(batch ")
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("no batch in {line:?}"));
        *seen.entry(batch.to_owned()).or_insert(0) += 1;
    }
    seen
}

fn assert_consecutive<'a>(runs: impl IntoIterator<Item = &'a Run>) {
    let ticks: Vec<u64> = runs.into_iter().map(|r| r.tick).collect();
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TICK_MS,
            "a tick was skipped or doubled: {ticks:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_enqueue_each_tick_exactly_once() {
    let (redis, store, dir) = start().await;
    register(&store, 25).await;
    let mut a = Scheduler::spawn(&redis, dir.path(), "replica-a");
    let mut b = Scheduler::spawn(&redis, dir.path(), "replica-b");

    wait_for("4 ticks run", Duration::from_secs(25), async || {
        (done(&store).await.len() >= 4).then_some(())
    })
    .await;
    let (status_a, status_b) = (a.sigterm(), b.sigterm());
    assert!(status_a.success(), "replica a: {status_a}\n{}", a.log());
    assert!(status_b.success(), "replica b: {status_b}\n{}", b.log());

    let runs = runs(&store).await;
    assert!(runs.len() >= 4, "{runs:?}");
    assert_consecutive(&runs);
    let mut conn = store.connection();
    for run in &runs {
        assert_eq!(run.get("state"), "done", "{run:?}");
        assert_eq!(run.get("kind"), "tick", "{run:?}");
        assert_eq!(run.get("batch"), batch_of(run.tick), "{run:?}");
        let replica = run.get("replica");
        assert!(replica == "replica-a" || replica == "replica-b", "{run:?}");
        let lock: Option<String> = conn
            .get(store.keys().schedule_tick(run.tick))
            .await
            .expect("GET lock");
        assert_eq!(lock, None, "a finished run releases its lease");
        assert_eq!(run.get("adoptions"), "", "no run was abandoned: {run:?}");
        assert_eq!(
            run.count("enqueued") + run.count("already_active"),
            25,
            "{run:?}"
        );
    }
    let first = &runs[0];
    assert_eq!(
        (first.count("enqueued"), first.count("already_active")),
        (25, 0),
        "the first tick enqueues every registered login"
    );
    let first_counts = store
        .counts(Some(first.get("batch")))
        .await
        .expect("counts");
    assert_eq!(first_counts.total, 25);

    let locks: Vec<String> = conn
        .keys(format!("{}schedule:tick:*", store.keys().prefix()))
        .await
        .expect("KEYS locks");
    assert!(
        locks.is_empty(),
        "every finished run released its lease: {locks:?}"
    );
    let logs = a.log() + &b.log();
    assert!(
        !logs.contains("ERROR") && !logs.contains("WARN"),
        "a lost tick is no error:\n{logs}"
    );
    let lost = logs.matches("by another replica").count();
    assert!(
        lost >= runs.len() - 2,
        "the loser of each tick says so at info ({lost} of {}):\n{logs}",
        runs.len()
    );
    let printed = printed_batches(&[a.lines(), b.lines()]);
    let recorded: BTreeMap<String, usize> = runs
        .iter()
        .map(|r| (r.get("batch").to_owned(), 1))
        .collect();
    assert_eq!(printed, recorded, "each tick printed once, by its winner");
    let last: u64 = conn
        .get(store.keys().schedule_last())
        .await
        .expect("GET last");
    assert_eq!(Some(last), runs.last().map(|r| r.tick));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_tick_is_caught_up_once_on_restart() {
    let (redis, store, dir) = start().await;
    register(&store, 10).await;
    let mut first = Scheduler::spawn(&redis, dir.path(), "first");
    wait_for("2 ticks run", Duration::from_secs(15), async || {
        (done(&store).await.len() >= 2).then_some(())
    })
    .await;
    first.sigkill();
    let before = runs(&store).await;
    let last_before = before.last().map(|r| r.tick).expect("a run");
    assert!(before.iter().all(|r| r.get("kind") == "tick"), "{before:?}");

    // down for at least two ticks (by Redis' clock)
    wait_for("two ticks missed", Duration::from_secs(15), async || {
        let now = store.time_ms().await.expect("TIME");
        (now >= last_before + 2 * TICK_MS + 500).then_some(())
    })
    .await;
    let mut second = Scheduler::spawn(&redis, dir.path(), "second");
    wait_for(
        "a catch-up and 2 ticks",
        Duration::from_secs(15),
        async || {
            let runs = done(&store).await;
            let after = runs.iter().filter(|r| r.tick > last_before).count();
            (after >= 3).then_some(())
        },
    )
    .await;
    assert!(second.sigterm().success(), "{}", second.log());

    let runs = runs(&store).await;
    let after: Vec<&Run> = runs.iter().filter(|r| r.tick > last_before).collect();
    let catch_ups: Vec<&&Run> = after
        .iter()
        .filter(|r| r.get("kind") == "catch_up")
        .collect();
    assert_eq!(
        catch_ups.len(),
        1,
        "one catch-up, not one per missed tick: {after:?}"
    );
    let catch_up = after[0];
    assert_eq!(
        catch_up.get("kind"),
        "catch_up",
        "the restart runs it first"
    );
    assert_eq!(catch_up.get("replica"), "second");
    assert!(
        catch_up.tick >= last_before + 2 * TICK_MS,
        "the missed ticks in between are not run: {after:?}"
    );
    assert_eq!(
        (catch_up.count("enqueued"), catch_up.count("already_active")),
        (0, 10),
        "no worker ran: the earlier jobs are still active"
    );
    let normal: Vec<&Run> = runs.iter().filter(|r| r.tick > catch_up.tick).collect();
    assert!(normal.len() >= 2, "{normal:?}");
    assert!(normal.iter().all(|r| r.get("kind") == "tick"), "{normal:?}");
    assert_consecutive(normal.iter().copied());
    assert_eq!(normal[0].tick - catch_up.tick, TICK_MS, "then normal ticks");
    let lines = second.lines();
    assert!(
        lines.first().is_some_and(
            |l| l.contains("(catch-up): enqueued 0, already active 10, already in batch 0")
        ),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_lock_has_one_winner_and_keeps_the_newest_runs() {
    let (_redis, store, _dir) = start().await;
    let tick = 1_795_503_600_000;
    let claims = futures::future::join_all((0..8).map(|i| {
        let store = store.clone();
        async move {
            let replica = format!("r{i}");
            let request = TickRequest {
                tick_ms: tick,
                replica: &replica,
                batch: "b",
                kind: RunKind::Tick,
                lock_ttl: Duration::from_secs(60),
            };
            store.schedule_claim(&request).await.expect("claim")
        }
    }))
    .await;
    let winners = claims.iter().filter(|c| **c == TickClaim::Won).count();
    assert_eq!(winners, 1, "{claims:?}");
    assert_eq!(store.schedule_last().await.expect("last"), Some(tick));

    let request = |tick_ms| TickRequest {
        tick_ms,
        replica: "late",
        batch: "b",
        kind: RunKind::CatchUp,
        lock_ttl: Duration::from_millis(1),
    };
    assert!(matches!(
        store.schedule_claim(&request(tick - 1_000)).await.expect("claim"),
        TickClaim::Stale { last_ms } if last_ms == tick
    ));
    // the run record still refuses the tick once its lock has expired
    let mut conn = store.connection();
    let _: () = conn
        .del(store.keys().schedule_tick(tick))
        .await
        .expect("DEL lock");
    assert!(matches!(
        store.schedule_claim(&request(tick)).await.expect("claim"),
        TickClaim::Taken { .. }
    ));

    for i in 1..=SCHEDULE_RUNS_KEPT + 5 {
        let claim = store
            .schedule_claim(&request(tick + i * 1_000))
            .await
            .expect("claim");
        assert_eq!(claim, TickClaim::Won);
    }
    let kept = runs(&store).await;
    assert_eq!(kept.len() as u64, SCHEDULE_RUNS_KEPT);
    assert_eq!(kept[0].tick, tick + 6_000, "the oldest are dropped");
    let old: bool = conn
        .exists(store.keys().schedule_run(tick))
        .await
        .expect("EXISTS");
    assert!(!old, "with their records");
}

#[test]
fn bad_schedules_and_unreachable_redis_are_clear_errors() {
    let redis = RedisServer::start().expect("redis-server");
    let run = |url: &str, args: &[&str]| {
        let mut all = vec!["schedule"];
        all.extend_from_slice(args);
        flinkq_cli(url, NAMESPACE, &all, None)
    };
    let out = run(&redis.url(), &["--cron", "0 25 * * *"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("invalid --cron \"0 25 * * *\""), "{stderr}");
    assert!(stderr.contains("e.g. \"0 2 * * *\""), "{stderr}");

    let out = run(
        &redis.url(),
        &["--cron", "0 2 * * *", "--tz", "Mars/Olympus"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("unknown --tz \"Mars/Olympus\""), "{stderr}");

    let dead = format!("redis://127.0.0.1:{}", free_port());
    let out = run(&dead, &["--cron", "0 2 * * *"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_abandoned_mid_refresh_is_adopted_and_enqueues_each_login_once() {
    let (redis, store, dir) = start().await;
    let logins: Vec<LoginId> = (0..5_000).map(|_| LoginId::random()).collect();
    store.register(&logins).await.expect("register");

    // a replica won the newest tick, enqueued 2,000 logins of its batch, and
    // died: its lease (the per-tick lock) runs out and the run stays running
    let now = store.time_ms().await.expect("TIME");
    let tick = now - now % TICK_MS;
    store
        .schedule_baseline(tick - TICK_MS)
        .await
        .expect("baseline");
    let batch = batch_of(tick);
    let claim = TickRequest {
        tick_ms: tick,
        replica: "dead-replica",
        batch: &batch,
        kind: RunKind::Tick,
        lock_ttl: Duration::from_millis(1),
    };
    assert_eq!(
        store.schedule_claim(&claim).await.expect("claim"),
        TickClaim::Won
    );
    let partial = store
        .enqueue(&batch, &logins[..2_000])
        .await
        .expect("enqueue");
    assert_eq!(partial.enqueued, 2_000);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let mut survivor = Scheduler::spawn(&redis, dir.path(), "survivor");
    let run = wait_for(
        "the abandoned run to be finished",
        Duration::from_secs(20),
        async || {
            runs(&store)
                .await
                .into_iter()
                .find(|r| r.tick == tick && r.get("state") == "done")
        },
    )
    .await;
    assert!(survivor.sigterm().success(), "{}", survivor.log());

    assert_eq!(run.get("replica"), "survivor", "{run:?}");
    assert_eq!(run.get("adopted_from"), "dead-replica", "{run:?}");
    assert_eq!(
        (run.count("enqueued"), run.count("already_in_batch")),
        (3_000, 2_000),
        "the logins the dead replica enqueued are skipped: {run:?}"
    );
    let counts = store.counts(Some(&batch)).await.expect("counts");
    assert_eq!(
        counts.total, 5_000,
        "every registered login once in the tick's batch"
    );
    assert!(survivor.log().contains("adopting"), "{}", survivor.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_rides_out_a_redis_crash_and_runs_the_next_ticks() {
    let mut redis = RedisServer::start_with(flinkq_tests::redis_harness::RedisOptions {
        aof: true,
        ..Default::default()
    })
    .expect("redis-server with AOF");
    let store = Store::connect(&StoreConfig::new(redis.url(), NAMESPACE))
        .await
        .expect("store");
    let dir = tempfile::tempdir().expect("tempdir");
    register(&store, 10).await;
    let mut scheduler = Scheduler::spawn(&redis, dir.path(), "steadfast");
    wait_for("a first tick", Duration::from_secs(15), async || {
        (!done(&store).await.is_empty()).then_some(())
    })
    .await;

    redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.start_again().expect("redis-server again");
    let restarted = wait_for("Redis back", Duration::from_secs(10), async || {
        store.time_ms().await.ok()
    })
    .await;
    wait_for(
        "two ticks after the outage",
        Duration::from_secs(20),
        async || {
            let after = done(&store)
                .await
                .into_iter()
                .filter(|r| r.tick > restarted)
                .count();
            (after >= 2).then_some(())
        },
    )
    .await;
    let runs = done(&store).await;
    let status = scheduler.sigterm();
    assert!(status.success(), "{status}\n{}", scheduler.log());
    assert!(
        scheduler.log().contains("retrying"),
        "the outage was logged and retried:\n{}",
        scheduler.log()
    );
    let ticks: Vec<u64> = runs.iter().map(|r| r.tick).collect();
    let unique: std::collections::BTreeSet<u64> = ticks.iter().copied().collect();
    assert_eq!(unique.len(), ticks.len(), "no tick twice: {ticks:?}");
    assert!(
        runs.iter().any(|r| r.tick < restarted - 3_000),
        "the data survived the crash (AOF): {ticks:?}"
    );
}
