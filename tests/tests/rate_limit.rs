//! The global rate limit holds across workers: the simulator never sees more
//! calls in any one-second window than the rate plus the burst.

use std::time::Duration;

use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::WorkerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_rate_limit_holds_across_two_workers() {
    const RATE: usize = 20;
    const BURST: usize = 5;
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world.setup.extra_env = vec![
        ("FLINKQ_MAX_RPS".into(), RATE.to_string()),
        ("FLINKQ_RATE_BURST".into(), BURST.to_string()),
    ];
    // 40 logins x (1 Authorize + 2 polls) = 120 calls: 6 s at 20/s
    let logins = world.logins(40, &Script::pending(1));
    world.enqueue("limited", &logins).await;
    let _a = WorkerProcess::spawn(&world.setup);
    let _b = WorkerProcess::spawn(&world.setup);
    let started = std::time::Instant::now();
    let counts = world
        .wait_finished("limited", Duration::from_secs(60))
        .await;
    let took = started.elapsed();
    assert_eq!(counts.succeeded, 40);
    let calls = world.sim.totals().authorize_calls + world.sim.totals().investments_calls;
    assert_eq!(calls, 120);
    let busiest = world.sim.max_calls_in_window(Duration::from_secs(1));
    assert!(
        busiest <= RATE + BURST,
        "{busiest} calls in one second; limit {RATE}/s + burst {BURST}"
    );
    assert!(
        busiest >= RATE / 2,
        "the limit is not starving the workers: {busiest}/s"
    );
    assert!(
        took >= Duration::from_secs(4),
        "120 calls at 20/s cannot finish in {took:?}"
    );
    assert_eq!(world.sim.violations(), vec![]);
}
