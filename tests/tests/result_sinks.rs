//! Result sinks: the Redis sink stores each payload compressed with a TTL,
//! the files sink leaves a pointer to its file, `flinkq result` reads either,
//! and the `results` stream has exactly one entry per finished job.

use flinkq_shared::Product;
use std::collections::HashSet;
use std::time::Duration;

use flinkq_shared::result_record::decompress;
use flinkq_shared::store::ResultEntry;
use flinkq_shared::{JobState, LoginId};
use flinkq_tests::cli_output::CliOutput;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::WorkerProcess;
use redis::AsyncCommands;

/// `flinkq result <login>` as parsed JSON, checking it names the login.
fn result_json(world: &Scenario, login: &LoginId) -> (Vec<u8>, serde_json::Value) {
    let out = world.cli(&["result", &login.to_string()]);
    assert!(out.status.success(), "flinkq result: {}", out.stderr_text());
    let payload: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON payload");
    assert_eq!(
        payload["Investments"][0]["Login"]["Id"],
        login.to_string(),
        "the payload is this login's"
    );
    (out.stdout, payload)
}

async fn all_entries(world: &Scenario) -> Vec<ResultEntry> {
    world
        .store
        .result_entries(None, 100_000)
        .await
        .expect("results stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_stores_compressed_payloads_and_one_stream_entry_per_job() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    let good = world.logins(20, &Script::pending(2));
    let bad = world.logins(3, &Script::invalid());
    world
        .enqueue("sinks", &[good.clone(), bad.clone()].concat())
        .await;
    world.setup.extra_env.extend([
        ("FLINKQ_RESULTS".to_owned(), "redis".to_owned()),
        ("FLINKQ_RESULT_TTL".to_owned(), "1h".to_owned()),
    ]);
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("sinks", Duration::from_secs(60)).await;
    assert_eq!((counts.succeeded, counts.failed), (20, 3));
    assert!(
        !world.setup.results_dir.exists(),
        "the redis sink writes no files"
    );

    let mut conn = world.store.connection();
    for login in &good {
        let (printed, _) = result_json(&world, login);
        let key = world.store.keys().result(login, Product::DEFAULT);
        let gzip: Vec<u8> = conn.hget(&key, "data").await.expect("HGET data");
        assert_eq!(&gzip[..2], &[0x1f, 0x8b], "stored gzip-compressed");
        let payload = decompress(&gzip).expect("gunzip");
        assert!(
            gzip.len() < payload.len(),
            "compression shrinks the payload"
        );
        assert_eq!(
            printed.strip_suffix(b"\n").unwrap_or(&printed),
            payload.as_slice(),
            "flinkq result prints the stored payload"
        );
        let ttl: i64 = conn.pttl(&key).await.expect("PTTL");
        assert!(
            0 < ttl && ttl <= 3_600_000,
            "the payload expires with FLINKQ_RESULT_TTL: {ttl} ms"
        );
    }
    for login in &bad {
        let out = world.cli(&["result", &login.to_string()]);
        assert_eq!(out.status.code(), Some(1), "no result for a failed login");
        let err = out.stderr_text();
        assert!(
            err.contains("newest job is failed") && err.contains("INVALID_LOGIN"),
            "{err}"
        );
    }

    let entries = all_entries(&world).await;
    assert_eq!(entries.len(), 23, "one entry per finished job: {entries:?}");
    let jobs: HashSet<_> = entries.iter().map(|e| e.job).collect();
    assert_eq!(jobs.len(), 23, "no job twice");
    for login in &good {
        let mine: Vec<_> = entries
            .iter()
            .filter(|e| e.login == login.to_string())
            .collect();
        assert_eq!(mine.len(), 1, "{login}: {mine:?}");
        let entry = mine[0];
        assert_eq!(entry.state, JobState::Succeeded);
        assert_eq!(entry.batch, "sinks");
        assert_eq!(entry.sink.as_deref(), Some("redis"));
        assert_eq!(
            entry.location.as_deref(),
            Some(world.store.keys().result(login, Product::DEFAULT).as_str())
        );
        assert_eq!(entry.error, None);
    }
    for login in &bad {
        let entry = entries
            .iter()
            .find(|e| e.login == login.to_string())
            .expect("an entry for a failed login");
        assert_eq!(entry.state, JobState::Failed);
        assert_eq!(entry.error.as_deref(), Some("INVALID_LOGIN"));
        assert_eq!(
            (entry.sink.as_deref(), entry.location.as_deref()),
            (None, None)
        );
    }

    // a consumer reads on from the last id it saw
    let page = world
        .store
        .result_entries(Some(&entries[9].id), 5)
        .await
        .expect("page");
    assert_eq!(page, entries[10..15].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sink_result_is_read_back_through_its_pointer() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let logins = world.logins(5, &Script::pending(1));
    world.enqueue("files", &logins).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("files", Duration::from_secs(30)).await;

    let results_dir = std::fs::canonicalize(&world.setup.results_dir).expect("results dir");
    for login in &logins {
        let file = results_dir
            .join("investments")
            .join(format!("{login}.json"));
        let (printed, _) = result_json(&world, login);
        let on_disk = std::fs::read(&file).expect("result file");
        assert_eq!(printed.strip_suffix(b"\n").unwrap_or(&printed), on_disk);

        let meta = world.cli(&["result", &login.to_string(), "--meta"]);
        assert!(meta.status.success(), "{}", meta.stderr_text());
        let meta: serde_json::Value = serde_json::from_slice(&meta.stdout).expect("meta JSON");
        assert_eq!(meta["sink"], "file");
        assert_eq!(meta["location"], file.display().to_string());
    }
    let entries = all_entries(&world).await;
    assert_eq!(entries.len(), 5);
    assert!(entries.iter().all(|e| {
        e.sink.as_deref() == Some("file")
            && e.location
                .as_deref()
                .is_some_and(|l| l.ends_with(&format!("{}.json", e.login)))
    }));

    // the file is gone (another host, a wiped volume): a clear error
    let gone = &logins[0];
    std::fs::remove_file(results_dir.join("investments").join(format!("{gone}.json")))
        .expect("remove");
    let out = world.cli(&["result", &gone.to_string()]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        out.stderr_text().contains("FLINKQ_RESULTS_DIR"),
        "{}",
        out.stderr_text()
    );

    let unknown = world.cli(&["result", &LoginId::random().to_string()]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        unknown.stderr_text().contains("no job"),
        "{}",
        unknown.stderr_text()
    );
    let malformed = world.cli(&["result", "not-a-login"]);
    assert_eq!(
        malformed.status.code(),
        Some(64),
        "{}",
        malformed.stderr_text()
    );
}
