//! The login registry and `flinkq refresh`.

use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_tests::cli_output::CliOutput;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::WorkerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_enqueues_every_registered_login_once() {
    let world = Scenario::start(Duration::from_millis(100)).await;
    let logins = world.logins(30, &Script::default());
    let mut file: String = logins.iter().map(|l| format!("{l}\n")).collect();
    file.push_str("not-a-login\n");

    let refused = world.cli_with_input(&["logins", "import", "--file", "-"], Some(file.as_bytes()));
    assert_eq!(
        refused.status.code(),
        Some(65),
        "a bad line registers nothing"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stdin:31:"));
    assert_eq!(
        world
            .cli_with_input(&["logins", "list", "--json"], None)
            .json_ok(),
        serde_json::json!([])
    );

    let imported = world.cli_with_input(
        &["logins", "import", "--file", "-", "--skip-invalid"],
        Some(file.as_bytes()),
    );
    assert!(String::from_utf8_lossy(&imported.stdout).starts_with("registered 30 new"));
    let extra = LoginId::random().to_string();
    assert!(
        world
            .cli_with_input(&["logins", "add", &extra], None)
            .status
            .success()
    );
    assert!(
        world
            .cli_with_input(&["logins", "remove", &extra], None)
            .status
            .success()
    );
    let listed = world
        .cli_with_input(&["logins", "list", "--json"], None)
        .json_ok();
    assert_eq!(listed.as_array().map(Vec::len), Some(30));

    let first = world
        .cli_with_input(&["refresh", "--batch", "night-1", "--json"], None)
        .json_ok();
    assert_eq!(
        (first["enqueued"].as_u64(), first["already_active"].as_u64()),
        (Some(30), Some(0))
    );
    let again = world
        .cli_with_input(&["refresh", "--batch", "night-1b", "--json"], None)
        .json_ok();
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
    let next = world
        .cli_with_input(&["refresh", "--batch", "night-2", "--json"], None)
        .json_ok();
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
