//! Fair sharing: a small high-priority batch enqueued behind a large
//! low-priority backlog starts, and finishes, before the backlog drains.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::Priority;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_batch_overtakes_a_low_priority_backlog() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world.setup.concurrency = 8;
    world.setup.extra_env = vec![("RUST_LOG".into(), "warn".into())];
    let script = Script::pending(1);
    let backlog = world.logins(2_000, &script);
    world
        .store
        .enqueue_with("nightly", Priority::Low, Product::DEFAULT, &backlog)
        .await
        .expect("enqueue backlog");
    let _worker = WorkerProcess::spawn(&world.setup);
    wait_for(
        "the backlog to start",
        Duration::from_secs(30),
        async || {
            let counts = world.store.counts(Some("nightly")).await.ok()?;
            (counts.succeeded >= 20).then_some(())
        },
    )
    .await;

    let urgent = world.logins(20, &script);
    world
        .store
        .enqueue_with("urgent", Priority::High, Product::DEFAULT, &urgent)
        .await
        .expect("enqueue urgent");
    let urgent_counts = world.wait_finished("urgent", Duration::from_secs(60)).await;
    assert_eq!(urgent_counts.succeeded, 20);
    let backlog_counts = world.store.counts(Some("nightly")).await.expect("counts");
    assert!(
        backlog_counts.unfinished() > 1_000,
        "the urgent batch waited for the backlog: {backlog_counts:?}"
    );
    let job = world
        .store
        .job_for_login(&urgent[0], Product::DEFAULT)
        .await
        .expect("read")
        .expect("job");
    assert_eq!(job.state, flinkq_shared::JobState::Succeeded);
}
