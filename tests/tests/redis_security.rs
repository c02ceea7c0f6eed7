//! Secrets and exposure: Redis AUTH and TLS work, the Flinks key can come
//! from a file and never shows in logs.

use std::time::Duration;

use flinkq_tests::redis_harness::RedisOptions;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Script, SimConfig};
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli};

const REDIS_PASSWORD: &str = "r3dis-pa55";
const FLINKS_KEY: &str = "fk_from_a_file_91c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_auth_and_tls_with_the_auth_key_from_a_file() {
    let redis = RedisOptions {
        tls: true,
        extra_args: vec!["--requirepass".into(), REDIS_PASSWORD.into()],
        ..RedisOptions::default()
    };
    let sim = SimConfig {
        auth_key: Some(FLINKS_KEY.into()),
        ..SimConfig::default()
    };
    let mut world = Scenario::start_full(Duration::from_millis(200), sim, redis).await;
    assert!(
        world.redis.url().starts_with("rediss://:"),
        "{}",
        world.redis.url()
    );
    let key_file = world.work.path().join("flinks.key");
    std::fs::write(&key_file, format!("{FLINKS_KEY}\n")).expect("key file");
    let ca = world.redis.ca_cert().display().to_string();
    world.setup.extra_env = vec![
        (
            "FLINKQ_AUTH_KEY_FILE".into(),
            key_file.display().to_string(),
        ),
        ("FLINKQ_REDIS_CA_FILE".into(), ca.clone()),
        ("RUST_LOG".into(), "debug".into()),
    ];
    let logins = world.logins(10, &Script::default());
    let enqueue =
        std::process::Command::new(flinkq_tests::worker_process::workspace_binary("flinkq"))
            .env("FLINKQ_REDIS_URL", world.redis.url())
            .env("FLINKQ_REDIS_CA_FILE", &ca)
            .env("FLINKQ_NAMESPACE", &world.setup.namespace)
            .args(["enqueue", "--batch", "secure", "--json"])
            .args(logins.iter().map(ToString::to_string))
            .output()
            .expect("flinkq enqueue");
    assert!(
        enqueue.status.success(),
        "{}",
        String::from_utf8_lossy(&enqueue.stderr)
    );

    let mut worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("secure", Duration::from_secs(30)).await;
    assert_eq!(counts.succeeded, 10);
    assert_eq!(
        world.sim.totals().rejected,
        0,
        "every call carried the key from the file"
    );
    worker.sigterm(Duration::from_secs(10));
    let log = std::fs::read_to_string(&world.setup.log_file).expect("log");
    assert!(
        !log.contains(FLINKS_KEY),
        "the Flinks key leaked into the log"
    );
    assert!(
        !log.contains(REDIS_PASSWORD),
        "the Redis password leaked into the log"
    );

    // without the CA the TLS handshake is refused, with a clear message
    let untrusted = flinkq_cli(
        &world.redis.url(),
        &world.setup.namespace,
        &["status"],
        None,
    );
    assert_eq!(untrusted.status.code(), Some(69));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.contains("cannot reach Redis at rediss://:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains(REDIS_PASSWORD));
}
