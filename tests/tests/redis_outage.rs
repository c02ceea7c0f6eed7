//! Redis goes away mid-batch and comes back: the worker neither exits nor
//! panics, and every job finishes.

use std::time::Duration;

use flinkq_shared::Product;
use flinkq_tests::redis_harness::RedisOptions;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Script, SimConfig};
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_batch() {
    let aof = RedisOptions {
        aof: true,
        ..RedisOptions::default()
    };
    let mut world =
        Scenario::start_full(Duration::from_millis(300), SimConfig::default(), aof).await;
    world.setup.lease = Duration::from_secs(5);
    let logins = world.logins(300, &Script::pending(3));
    world.enqueue("outage", &logins).await;
    let mut worker = WorkerProcess::spawn(&world.setup);
    wait_for(
        "a third of the batch",
        Duration::from_secs(60),
        async || {
            let counts = world.store.counts(Some("outage")).await.ok()?;
            (counts.succeeded >= 100).then_some(())
        },
    )
    .await;

    world.redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        worker.try_exit_status().is_none(),
        "the worker survives a Redis outage"
    );
    world
        .redis
        .start_again()
        .expect("restart redis with its AOF");

    let counts = world.wait_finished("outage", Duration::from_secs(90)).await;
    assert_eq!(
        (counts.succeeded, counts.total),
        (300, 300),
        "none lost: {counts:?}"
    );
    assert_eq!(counts.failed + counts.timed_out, 0);
    for login in &logins {
        assert!(world.setup.result_file(Product::DEFAULT, login).exists());
        assert_eq!(
            world.sim.login_stats(&login.to_string()).authorize_calls,
            1,
            "{login}"
        );
    }
    // a 3 s outage fits in the 5 s lease: no step had to run twice
    assert_eq!(world.sim.violations(), vec![]);
    assert!(worker.try_exit_status().is_none());
    let log = std::fs::read_to_string(&world.setup.log_file).expect("log");
    // noticed by whatever called Redis during the outage: the claim loop,
    // or, when every slot was held by a step (a worker kept busy), those
    // steps' commits, which retry while their lease holds
    assert!(
        log.contains("claim failed; backing off")
            || log.contains("commit failed; retrying while the lease holds"),
        "the outage was noticed and logged"
    );
    assert!(!log.contains("panicked"), "no panic");
}
