//! `flinkq enqueue` at scale: 100,000 lines streamed through the CLI with
//! exact counts, plain output when stderr is not a terminal, and the same
//! enqueue run twice (before or after the batch finished) enqueues nothing.

use std::io::Write;
use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli};

fn enqueue_json(world: &Scenario, args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["enqueue", "--json"];
    all.extend_from_slice(args);
    let out = flinkq_cli(&world.redis.url(), &world.setup.namespace, &all, None);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "flinkq enqueue: {stderr}");
    (
        serde_json::from_slice(&out.stdout).expect("enqueue --json"),
        stderr,
    )
}

fn counts(report: &serde_json::Value) -> [u64; 5] {
    [
        "enqueued",
        "already_active",
        "already_in_batch",
        "duplicates",
        "invalid",
    ]
    .map(|key| report[key].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_lines_enqueue_exactly_and_a_rerun_enqueues_nothing() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let logins: Vec<LoginId> = (0..100_000).map(|_| LoginId::random()).collect();
    let path = world.work.path().join("logins.txt");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        for (n, login) in logins.iter().enumerate() {
            writeln!(file, "{login}").expect("write");
            if n % 10_000 == 0 {
                writeln!(file, "{login}\nnot-a-login-{n}").expect("write");
            }
        }
    }
    let file = path.to_str().expect("utf-8 path");

    let (first, stderr) = enqueue_json(
        &world,
        &["--file", file, "--batch", "big", "--skip-invalid"],
    );
    assert_eq!(counts(&first), [100_000, 0, 0, 10, 10], "{first}");
    assert!(
        !stderr.contains('\r') && !stderr.contains("\x1b["),
        "no progress bar when stderr is not a terminal: {stderr:?}"
    );
    assert!(
        stderr.contains(&format!("{file}:3: ")),
        "bad lines are listed with their line: {stderr}"
    );
    let batch = world.store.counts(Some("big")).await.expect("counts");
    assert_eq!((batch.total, batch.queued), (100_000, 100_000));

    // the same command again (a pipeline retrying its step): nothing new
    let (again, _) = enqueue_json(
        &world,
        &["--file", file, "--batch", "big", "--skip-invalid"],
    );
    assert_eq!(counts(&again), [0, 0, 100_000, 10, 10], "{again}");
    // another batch while they are unfinished: every login is already active
    let (other, _) = enqueue_json(
        &world,
        &["--file", file, "--batch", "other", "--skip-invalid"],
    );
    assert_eq!(counts(&other), [0, 100_000, 0, 10, 10], "{other}");
    let all = world.store.counts(None).await.expect("counts");
    assert_eq!(all.total, 100_000, "one job per login in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_an_enqueue_after_its_batch_finished_enqueues_nothing() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let logins = world.logins(6, &Script::pending(1));
    let ids: Vec<String> = logins.iter().map(ToString::to_string).collect();
    let args = |batch: &'static str| {
        let mut args = vec!["--batch", batch];
        args.extend(ids.iter().map(String::as_str));
        args
    };
    let (first, _) = enqueue_json(&world, &args("nightly-1"));
    assert_eq!(counts(&first)[0], 6);
    let worker = WorkerProcess::spawn(&world.setup);
    let done = world
        .wait_finished("nightly-1", Duration::from_secs(30))
        .await;
    assert_eq!(done.succeeded, 6);

    let (again, _) = enqueue_json(&world, &args("nightly-1"));
    assert_eq!(counts(&again), [0, 0, 6, 0, 0], "{again}");
    let batch = world.store.counts(Some("nightly-1")).await.expect("counts");
    assert_eq!(
        (batch.total, batch.succeeded),
        (6, 6),
        "the batch is untouched"
    );
    let events = world.store.batch_events(100).await.expect("events");
    assert_eq!(events.len(), 1, "still one completion: {events:?}");

    // a new batch name is a new run
    let (fresh, _) = enqueue_json(&world, &args("nightly-2"));
    assert_eq!(counts(&fresh)[0], 6, "{fresh}");
    world
        .wait_finished("nightly-2", Duration::from_secs(30))
        .await;
    drop(worker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_bar_is_drawn_when_stderr_is_a_terminal() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let path = world.work.path().join("tty-logins.txt");
    let text: String = (0..20_000)
        .map(|_| format!("{}\n", LoginId::random()))
        .collect();
    std::fs::write(&path, text).expect("write");
    // `script` runs the command on a pseudo-terminal and copies what it shows
    let command = format!(
        "{} enqueue --batch tty --file {}",
        flinkq_tests::worker_process::workspace_binary("flinkq").display(),
        path.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("FLINKQ_REDIS_URL", world.redis.url())
        .env("FLINKQ_NAMESPACE", &world.setup.namespace)
        .env("TERM", "xterm")
        .output()
        .expect("script(1) from util-linux");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("/20000 logins"),
        "the bar shows progress on a terminal: {shown:?}"
    );
    assert!(shown.contains("enqueued 20000,"), "{shown:?}");
    let batch = world.store.counts(Some("tty")).await.expect("counts");
    assert_eq!(batch.total, 20_000);
}

/// Logins of the enqueue measurements, and how many per call (flinkq's
/// enqueue sends `ENQUEUE_CHUNK`, 1,000).
const MEASURED_LOGINS: usize = 20_000;
const MEASURED_PER_CALL: usize = 1_000;

#[tokio::test]
#[ignore = "a measurement: run by scripts/redis-instructions --enqueue"]
async fn redis_cpu_per_enqueued_login() {
    // flinkq's enqueue of 20,000 new logins, 1,000 per call, as `flinkq
    // enqueue` sends them: scripts/redis-instructions counts the server's
    // instructions and divides by the logins
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let logins: Vec<LoginId> = (0..MEASURED_LOGINS).map(|_| LoginId::random()).collect();
    let report = store.enqueue("cost", &logins).await.expect("enqueue");
    assert_eq!(report.enqueued, MEASURED_LOGINS as u64);
}

#[tokio::test]
#[ignore = "a measurement: run by scripts/redis-instructions --enqueue"]
async fn redis_cpu_floor_of_an_enqueue() {
    // the same logins through tests/lua/floor_enqueue.lua: the least an
    // enqueue that keeps one unfinished job per login costs Redis
    // (BENCHMARKS.md, issue 14's ninth pass)
    let redis = RedisServer::start().expect("redis-server");
    let mut conn = redis.plain_connection().await;
    let script = redis::Script::new(include_str!("../lua/floor_enqueue.lua"));
    let mut enqueued = 0;
    for _ in 0..MEASURED_LOGINS / MEASURED_PER_CALL {
        let mut call = script.arg("cost");
        call.arg("1765100000000");
        for _ in 0..MEASURED_PER_CALL {
            call.arg(LoginId::random().to_string())
                .arg(uuid::Uuid::now_v7().to_string());
        }
        let created: usize = call.invoke_async(&mut conn).await.expect("enqueue");
        enqueued += created;
    }
    assert_eq!(enqueued, MEASURED_LOGINS);
}
