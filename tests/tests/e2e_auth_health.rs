//! The auth key is sent when configured and never logged; the health
//! endpoints tell the truth.

use std::time::Duration;

use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Script, SimConfig};
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

const KEY: &str = "fk_live_7d1c0ffee";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_key_is_sent_when_configured_and_never_logged() {
    let mut world = Scenario::start_with(
        Duration::from_millis(200),
        SimConfig {
            auth_key: Some(KEY.into()),
            ..SimConfig::default()
        },
    )
    .await;
    world.setup.extra_env = vec![
        ("FLINKQ_AUTH_KEY".into(), KEY.into()),
        ("RUST_LOG".into(), "debug".into()),
    ];
    let logins = world.logins(5, &Script::default());
    world.enqueue("auth", &logins).await;

    let mut worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("auth", Duration::from_secs(30)).await;
    assert_eq!(
        counts.succeeded, 5,
        "the simulator refuses requests without the key"
    );
    for login in &logins {
        assert!(world.sim.login_stats(&login.to_string()).auth_header_seen);
    }
    assert_eq!(world.sim.totals().rejected, 0);
    worker.sigterm(Duration::from_secs(10));
    let log = std::fs::read_to_string(&world.setup.log_file).expect("worker log");
    assert!(log.contains("job finished"), "the log is written: {log}");
    assert!(!log.contains(KEY), "the auth key appears in the worker log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_report_redis() {
    let mut world = Scenario::start(Duration::from_millis(200)).await;
    let worker = WorkerProcess::spawn(&world.setup);
    let base = format!("http://127.0.0.1:{}", worker.metrics_port);
    let http = reqwest::Client::new();
    let get = async |path: &str| -> Option<(u16, serde_json::Value)> {
        let response = http.get(format!("{base}{path}")).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    };
    let (status, body) = wait_for("/readyz", Duration::from_secs(10), async || {
        get("/readyz").await.filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!((status, body["redis"].as_str()), (200, Some("up")));

    world.redis.stop();
    let (status, body) = wait_for("/readyz to fail", Duration::from_secs(15), async || {
        get("/readyz").await.filter(|(status, _)| *status == 503)
    })
    .await;
    assert_eq!((status, body["redis"].as_str()), (503, Some("down")));
    let (status, body) = get("/healthz")
        .await
        .expect("/healthz answers while Redis is down");
    assert_eq!(status, 200, "the process is alive");
    assert_eq!(body["redis"], "down");
    assert!(body["last_redis_error"].is_string());

    world.redis.start_again().expect("restart redis");
    wait_for("/readyz to recover", Duration::from_secs(20), async || {
        get("/readyz").await.filter(|(status, _)| *status == 200)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_job_and_login_on_every_step_line() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world.setup.extra_env = vec![
        ("FLINKQ_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "flinkq_worker=debug,info".into()),
    ];
    let logins = world.logins(5, &Script::pending(1));
    world.enqueue("logs", &logins).await;
    let mut worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("logs", Duration::from_secs(30)).await;
    worker.sigterm(Duration::from_secs(10));
    let log = std::fs::read_to_string(&world.setup.log_file).expect("log");
    let mut step_lines = 0;
    for line in log.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if entry["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("flinkq_worker::executor"))
        {
            step_lines += 1;
            let span = &entry["span"];
            assert!(
                span["job.id"].is_string() || span["job.id"].is_number(),
                "{line}"
            );
            let login = span["login.id"].as_str().unwrap_or_default();
            assert!(logins.iter().any(|l| l.to_string() == login), "{line}");
        }
    }
    assert!(
        step_lines >= 10,
        "debug step lines were logged: {step_lines}"
    );
}
