//! Bad input gets a clear error, a distinct exit code, and loses nothing:
//! the real `flinkq` and `flinkq-worker` binaries against a real Redis.

use flinkq_shared::LoginId;
use flinkq_tests::cli_output::CliOutput;
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::worker_process::{flinkq_cli, free_port, worker_refusal};

fn status_json(redis: &RedisServer) -> serde_json::Value {
    let out = flinkq_cli(&redis.url(), "cli", &["status", "--json"], None);
    assert!(out.status.success(), "{}", out.stderr_text());
    serde_json::from_slice(&out.stdout).expect("status --json")
}

#[test]
fn a_file_with_a_bad_line_enqueues_nothing_and_names_the_line() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b) = (LoginId::random(), LoginId::random());
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let body = format!("\u{feff}{a}\r\n\r\n# comment\r\n{b}\r\n{a}\r\nnot-a-uuid\r\n12345\r\n");
    std::fs::write(file.path(), body).expect("write input");
    let path = file.path().to_str().expect("utf-8 path");

    let out = flinkq_cli(&redis.url(), "cli", &["enqueue", "--file", path], None);
    assert_eq!(out.status.code(), Some(65), "EX_DATAERR");
    let stderr = out.stderr_text();
    assert!(
        stderr.contains(&format!("{path}:6: \"not-a-uuid\" is not a loginId")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{path}:7:")), "{stderr}");
    assert!(stderr.contains("--skip-invalid"), "{stderr}");
    assert_eq!(status_json(&redis)["total"], 0, "nothing half-done");

    let out = flinkq_cli(
        &redis.url(),
        "cli",
        &[
            "enqueue",
            "--file",
            path,
            "--skip-invalid",
            "--batch",
            "b",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", out.stderr_text());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["enqueued"], 2);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["invalid"], 2);
    assert_eq!(report["batch"], "b");

    // again, same batch: idempotent; another batch: both are already active
    let again = |batch: &str| {
        let out = flinkq_cli(
            &redis.url(),
            "cli",
            &[
                "enqueue",
                "--batch",
                batch,
                "--json",
                &a.to_string(),
                &b.to_string(),
            ],
            None,
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (
            report["enqueued"].as_u64(),
            report["already_active"].as_u64(),
            report["already_in_batch"].as_u64(),
        )
    };
    assert_eq!(again("b"), (Some(0), Some(0), Some(2)));
    assert_eq!(again("other"), (Some(0), Some(2), Some(0)));
    let status = status_json(&redis);
    assert_eq!(
        (status["queued"].as_u64(), status["total"].as_u64()),
        (Some(2), Some(2))
    );
    for key in [
        "queued",
        "authorizing",
        "polling",
        "succeeded",
        "failed",
        "timed_out",
        "cancelled",
        "total",
    ] {
        assert!(status[key].is_u64(), "status --json has {key}");
    }

    let out = flinkq_cli(&redis.url(), "cli", &["job", &a.to_string()], None);
    assert!(out.status.success());
    assert!(
        out.stdout_text().contains("state     queued"),
        "{}",
        out.stdout_text()
    );
}

#[test]
fn cli_errors_have_distinct_exit_codes() {
    let redis = RedisServer::start().expect("redis-server");
    let missing = flinkq_cli(
        &redis.url(),
        "cli",
        &["enqueue", "--file", "/nonexistent/logins.txt"],
        None,
    );
    assert_eq!(missing.status.code(), Some(66));
    assert!(
        missing
            .stderr_text()
            .contains("cannot read /nonexistent/logins.txt")
    );

    let none = flinkq_cli(&redis.url(), "cli", &["enqueue"], None);
    assert_eq!(none.status.code(), Some(64));

    let unknown_login = flinkq_cli(
        &redis.url(),
        "cli",
        &["job", &LoginId::random().to_string()],
        None,
    );
    assert_eq!(unknown_login.status.code(), Some(1));
    assert!(unknown_login.stderr_text().contains("no job for loginId"));

    let bad_login = flinkq_cli(&redis.url(), "cli", &["job", "nope"], None);
    assert_eq!(bad_login.status.code(), Some(64));

    let unknown_batch = flinkq_cli(&redis.url(), "cli", &["status", "--batch", "ghost"], None);
    assert_eq!(unknown_batch.status.code(), Some(1));
    assert!(
        unknown_batch
            .stderr_text()
            .contains("no batch named \"ghost\"")
    );

    let nowhere = format!("redis://127.0.0.1:{}", free_port());
    let down = flinkq_cli(&nowhere, "cli", &["status"], None);
    assert_eq!(down.status.code(), Some(69), "EX_UNAVAILABLE");
    assert!(
        down.stderr_text().contains("cannot reach Redis at"),
        "{}",
        down.stderr_text()
    );
}

fn worker_with(env: &[(&str, String)]) -> std::process::Output {
    worker_refusal(env, std::time::Duration::from_secs(30))
}

#[test]
fn the_worker_refuses_bad_configuration_and_an_unreachable_redis_at_start() {
    let bad_duration = worker_with(&[("FLINKQ_POLL_INTERVAL", "ten seconds".into())]);
    assert_eq!(bad_duration.status.code(), Some(2));
    assert!(
        bad_duration.stderr_text().contains("--poll-interval"),
        "{}",
        bad_duration.stderr_text()
    );

    let bad_url = worker_with(&[("FLINKQ_INVESTMENTS_URL", "not a url".into())]);
    assert_eq!(bad_url.status.code(), Some(2));
    assert!(bad_url.stderr_text().contains("--investments-url"));

    // an instance base is the URL up to the customer id: a query would be
    // lost or misplaced once the calls' paths are appended
    let bad_base = worker_with(&[(
        "FLINKQ_FLINKS_URL",
        "https://flinks.example/v3/customer?key=1".into(),
    )]);
    assert_eq!(bad_base.status.code(), Some(2));
    let stderr = bad_base.stderr_text();
    assert!(
        stderr.contains("--flinks-url") && stderr.contains("no query"),
        "{stderr}"
    );

    let results = tempfile::tempdir().expect("tempdir");
    let nowhere = format!("redis://user:hunter2@127.0.0.1:{}", free_port());
    let down = worker_with(&[
        ("FLINKQ_REDIS_URL", nowhere),
        ("FLINKQ_RESULTS_DIR", results.path().display().to_string()),
    ]);
    assert!(!down.status.success());
    let stderr = down.stderr_text();
    assert!(
        stderr.contains("cannot reach Redis at redis://user:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password never reaches a message"
    );
}
