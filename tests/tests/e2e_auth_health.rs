//! The auth key is sent when configured and never logged; the health
//! endpoints tell the truth.

use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_shared::store::{Store, StoreConfig};
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::sim::{SimConfig, Simulator};
use flinkq_tests::worker_process::{WorkerProcess, WorkerSetup, wait_for};

const KEY: &str = "fk_live_7d1c0ffee";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_key_is_sent_when_configured_and_never_logged() {
    let redis = RedisServer::start().expect("redis-server");
    let sim = Simulator::start(SimConfig {
        auth_key: Some(KEY.into()),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let work = tempfile::tempdir().expect("tempdir");
    let mut setup = WorkerSetup::new(
        &redis.url(),
        &sim.authorize_url(),
        &sim.investments_url(),
        work.path(),
    );
    setup.extra_env = vec![
        ("FLINKQ_AUTH_KEY".into(), KEY.into()),
        ("RUST_LOG".into(), "debug".into()),
    ];
    let store = Store::connect(&StoreConfig::new(redis.url(), &setup.namespace))
        .await
        .expect("store");
    let logins: Vec<LoginId> = (0..5).map(|_| LoginId::random()).collect();
    store.enqueue("auth", &logins).await.expect("enqueue");

    let mut worker = WorkerProcess::spawn(&setup);
    let counts = wait_for("the batch to finish", Duration::from_secs(30), async || {
        let counts = store.counts(Some("auth")).await.ok()?;
        (counts.unfinished() == 0).then_some(counts)
    })
    .await;
    assert_eq!(
        counts.succeeded, 5,
        "the simulator refuses requests without the key"
    );
    for login in &logins {
        assert!(sim.login_stats(&login.to_string()).auth_header_seen);
    }
    assert_eq!(sim.totals().rejected, 0);
    worker.sigterm(Duration::from_secs(10));
    let log = std::fs::read_to_string(&setup.log_file).expect("worker log");
    assert!(log.contains("job finished"), "the log is written: {log}");
    assert!(!log.contains(KEY), "the auth key appears in the worker log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_report_redis() {
    let mut redis = RedisServer::start().expect("redis-server");
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let work = tempfile::tempdir().expect("tempdir");
    let setup = WorkerSetup::new(
        &redis.url(),
        &sim.authorize_url(),
        &sim.investments_url(),
        work.path(),
    );
    let worker = WorkerProcess::spawn(&setup);
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

    redis.stop();
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

    redis.start_again().expect("restart redis");
    wait_for("/readyz to recover", Duration::from_secs(20), async || {
        get("/readyz").await.filter(|(status, _)| *status == 200)
    })
    .await;
}
