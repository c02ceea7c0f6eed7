//! Batches: `status --watch` exits with the batch's outcome, a finished batch
//! publishes exactly one completion event, `flinkq batches` lists them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli, workspace_binary};

/// A `status --watch` of `batch`, its output going to a file: a pipe nobody
/// reads fills up (64 KiB, a few minutes of lines at 100 ms) and blocks the
/// watcher, which then never exits however the batch ends.
struct Watch {
    child: Child,
    out: tempfile::NamedTempFile,
}

fn watch(world: &Scenario, batch: &str) -> Watch {
    let out = tempfile::NamedTempFile::new().expect("watch output file");
    let child = Command::new(workspace_binary("flinkq"))
        .env("FLINKQ_REDIS_URL", world.redis.url())
        .env("FLINKQ_NAMESPACE", &world.setup.namespace)
        .args(["status", "--batch", batch, "--watch", "--interval", "100ms"])
        .stdout(out.reopen().expect("reopen the output file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("flinkq status --watch");
    Watch { child, out }
}

async fn exit_code(mut watch: Watch, timeout: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = watch.child.try_wait().expect("try_wait") {
            let out = std::fs::read_to_string(watch.out.path()).expect("watch output");
            return (status.code(), out);
        }
        assert!(
            started.elapsed() < timeout,
            "status --watch did not exit within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_exits_with_the_batch_outcome_and_completion_fires_once() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let clean = world.logins(10, &Script::pending(1));
    let good = world.logins(8, &Script::default());
    let bad = world.logins(2, &Script::invalid());
    world.enqueue("clean", &clean).await;
    world.enqueue("mixed", &[good, bad].concat()).await;

    let watch_clean = watch(&world, "clean");
    let watch_mixed = watch(&world, "mixed");
    let _worker = WorkerProcess::spawn(&world.setup);
    let (code, out) = exit_code(watch_clean, Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "every job succeeded: {out}");
    assert!(out.contains("batch clean finished"), "{out}");
    let (code, out) = exit_code(watch_mixed, Duration::from_secs(30)).await;
    assert_eq!(code, Some(3), "some failed: {out}");

    let events = world.store.batch_events(100).await.expect("events");
    let of = |batch: &str| {
        events
            .iter()
            .filter(|e| e.batch == batch)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("clean").len(), 1, "one completion event: {events:?}");
    assert_eq!(of("mixed").len(), 1, "one completion event: {events:?}");
    assert_eq!(
        (of("clean")[0].counts.succeeded, of("clean")[0].counts.total),
        (10, 10)
    );
    assert_eq!(
        (
            of("mixed")[0].counts.succeeded,
            of("mixed")[0].counts.failed
        ),
        (8, 2)
    );

    let listed = flinkq_cli(
        &world.redis.url(),
        &world.setup.namespace,
        &["batches", "--json"],
        None,
    );
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let names: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .all(|b| b["completed_ms"].is_u64())
    );

    // the same logins again into the finished batch: a batch is one run, so
    // nothing is enqueued and nothing is published again
    let again = world.store.enqueue("clean", &clean).await.expect("enqueue");
    assert_eq!((again.enqueued, again.already_in_batch), (0, 10));
    // new logins added to the finished batch reopen it: it completes, and
    // publishes, once more
    let late = world.logins(3, &Script::pending(1));
    world.enqueue("clean", &late).await;
    let (code, _) = exit_code(watch(&world, "clean"), Duration::from_secs(30)).await;
    assert_eq!(code, Some(0));
    let events = world.store.batch_events(100).await.expect("events");
    let clean_events: Vec<_> = events.iter().filter(|e| e.batch == "clean").collect();
    assert_eq!(clean_events.len(), 2, "{events:?}");
    assert_eq!(
        (
            clean_events[1].counts.succeeded,
            clean_events[1].counts.total
        ),
        (13, 13)
    );
    assert_eq!(events.iter().filter(|e| e.batch == "mixed").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_logins_batch_finishes_with_exact_counts() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world.setup.concurrency = 256;
    // nothing crashes here: a long lease allows a generous HTTP timeout
    // (at most the lease), so 256 calls queued on a loaded machine are slow,
    // not failed
    world.setup.lease = Duration::from_secs(10);
    world.setup.extra_env = vec![
        ("RUST_LOG".into(), "warn".into()),
        ("FLINKQ_CLAIM_BATCH".into(), "256".into()),
    ];
    let pending = world.logins(5_000, &Script::pending(1));
    let direct = world.logins(4_900, &Script::default());
    let invalid = world.logins(100, &Script::invalid());
    let all: Vec<_> = [pending, direct, invalid].concat();
    let input: String = all.iter().map(|l| format!("{l}\n")).collect();
    let enqueued = flinkq_cli(
        &world.redis.url(),
        &world.setup.namespace,
        &["enqueue", "--batch", "big", "--file", "-", "--json"],
        Some(input.as_bytes()),
    );
    assert!(enqueued.status.success());
    let report: serde_json::Value = serde_json::from_slice(&enqueued.stdout).expect("json");
    assert_eq!(report["enqueued"], 10_000);

    let watcher = watch(&world, "big");
    let _worker = WorkerProcess::spawn(&world.setup);
    let (code, out) = exit_code(watcher, Duration::from_secs(240)).await;
    assert_eq!(
        code,
        Some(3),
        "100 invalid logins failed: {}",
        out.lines().last().unwrap_or_default()
    );
    let counts = world.store.counts(Some("big")).await.expect("counts");
    assert_eq!(
        (counts.succeeded, counts.failed, counts.total),
        (9_900, 100, 10_000)
    );
    let events = world.store.batch_events(100).await.expect("events");
    assert_eq!(
        events.iter().filter(|e| e.batch == "big").count(),
        1,
        "one completion event"
    );
    assert_eq!(world.sim.violations(), vec![]);
}
