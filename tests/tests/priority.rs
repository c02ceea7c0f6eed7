//! Fair sharing: a small high-priority batch enqueued behind a large
//! low-priority backlog starts, and finishes, before the backlog drains;
//! a job keeps its priority from step to step.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::store::CommitOutcome;
use flinkq_shared::{LoginId, Outcome, Policy, Priority, Tick, transition};
use flinkq_tests::redis_harness::RedisServer;
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

/// The commit of a step puts its job back in the due queue it was claimed
/// from (the claim tells it which): a high-priority job that waits again
/// is claimed before a low-priority one due earlier.
#[tokio::test]
async fn a_job_that_waits_again_goes_back_to_the_queue_of_its_priority() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let (high, low) = (LoginId::random(), LoginId::random());
    for (login, priority) in [(high, Priority::High), (low, Priority::Low)] {
        store
            .enqueue_with("b", priority, Product::DEFAULT, &[login])
            .await
            .expect("enqueue");
    }
    let claimed = store
        .claim(10, Duration::from_secs(10))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 2);
    // both authorized and due again at once, the low one a little earlier:
    // in one queue it would come first
    for job in &claimed.jobs {
        let outcome = Outcome::Authorized {
            request_id: format!("session-{}", job.id),
        };
        let tick = Tick {
            now_ms: claimed.now_ms,
            jitter: 0.0,
        };
        let mut next = transition(job, outcome, tick, &Policy::default());
        next.due_ms = Some(claimed.now_ms - if job.login == low { 2 } else { 1 });
        assert_eq!(
            job.apply(&next).await.expect("commit"),
            CommitOutcome::Applied
        );
    }
    let mut order = Vec::new();
    for _ in 0..2 {
        let claimed = store
            .claim(1, Duration::from_secs(10))
            .await
            .expect("claim again");
        order.extend(claimed.jobs.iter().map(|job| job.login));
    }
    assert_eq!(order, vec![high, low], "claimed in priority order");
}
