//! The login registry and `flinkq refresh`.

use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli};

fn cli(world: &Scenario, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    flinkq_cli(&world.redis.url(), &world.setup.namespace, args, stdin)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_enqueues_every_registered_login_once() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let logins = world.logins(30, &Script::default());
    let mut file: String = logins.iter().map(|l| format!("{l}\n")).collect();
    file.push_str("not-a-login\n");

    let refused = cli(
        &world,
        &["logins", "import", "--file", "-"],
        Some(file.as_bytes()),
    );
    assert_eq!(
        refused.status.code(),
        Some(65),
        "a bad line registers nothing"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stdin:31:"));
    assert_eq!(
        json(&cli(&world, &["logins", "list", "--json"], None)),
        serde_json::json!([])
    );

    let imported = cli(
        &world,
        &["logins", "import", "--file", "-", "--skip-invalid"],
        Some(file.as_bytes()),
    );
    assert!(String::from_utf8_lossy(&imported.stdout).starts_with("registered 30 new"));
    let extra = LoginId::random().to_string();
    assert!(
        cli(&world, &["logins", "add", &extra], None)
            .status
            .success()
    );
    assert!(
        cli(&world, &["logins", "remove", &extra], None)
            .status
            .success()
    );
    let listed = json(&cli(&world, &["logins", "list", "--json"], None));
    assert_eq!(listed.as_array().map(Vec::len), Some(30));

    let first = json(&cli(
        &world,
        &["refresh", "--batch", "night-1", "--json"],
        None,
    ));
    assert_eq!(
        (first["enqueued"].as_u64(), first["already_active"].as_u64()),
        (Some(30), Some(0))
    );
    let again = json(&cli(
        &world,
        &["refresh", "--batch", "night-1b", "--json"],
        None,
    ));
    assert_eq!(
        (again["enqueued"].as_u64(), again["already_active"].as_u64()),
        (Some(0), Some(30)),
        "active ones are skipped"
    );

    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world
        .wait_finished("night-1", Duration::from_secs(30))
        .await;
    assert_eq!(counts.succeeded, 30);
    let next = json(&cli(
        &world,
        &["refresh", "--batch", "night-2", "--json"],
        None,
    ));
    assert_eq!(
        next["enqueued"].as_u64(),
        Some(30),
        "the next night refreshes them all again"
    );
    let counts = world
        .wait_finished("night-2", Duration::from_secs(30))
        .await;
    assert_eq!(counts.succeeded, 30);
}
