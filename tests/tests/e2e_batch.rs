//! End to end: a real worker process, a real redis-server, the Flinks
//! simulator over real HTTP, the real `flinkq` CLI.

use flinkq_shared::Product;
use std::collections::HashMap;
use std::time::Duration;

use flinkq_shared::{JobState, LoginId};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, Script, ScriptedFault};
use flinkq_tests::worker_process::{WorkerProcess, flinkq_cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_mixed_logins_reach_the_right_terminal_state() {
    let interval = Duration::from_millis(300);
    let world = Scenario::start(interval).await;
    let (sim, setup, store) = (&world.sim, &world.setup, &world.store);

    // 0-3 pending answers, every 20th login invalid
    let logins: Vec<LoginId> = (0..500).map(|_| LoginId::random()).collect();
    let mut scripts = HashMap::new();
    for (i, login) in logins.iter().enumerate() {
        let script = Script {
            pending: (i % 4) as u32,
            invalid: i % 20 == 7,
            ..Script::default()
        };
        sim.set_script(&login.to_string(), script.clone());
        scripts.insert(*login, script);
    }
    let invalid = scripts.values().filter(|s| s.invalid).count() as u64;

    let input: String = logins.iter().map(|l| format!("{l}\n")).collect();
    let enqueue = flinkq_cli(
        &world.redis.url(),
        &setup.namespace,
        &["enqueue", "--batch", "mixed", "--file", "-", "--json"],
        Some(input.as_bytes()),
    );
    assert!(
        enqueue.status.success(),
        "enqueue failed: {}",
        String::from_utf8_lossy(&enqueue.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&enqueue.stdout).expect("enqueue --json");
    assert_eq!(report["enqueued"], 500);

    let mut worker = WorkerProcess::spawn(setup);
    let counts = world.wait_finished("mixed", Duration::from_secs(120)).await;
    assert_eq!(counts.total, 500);
    assert_eq!(counts.succeeded, 500 - invalid);
    assert_eq!(counts.failed, invalid);
    assert_eq!(counts.timed_out + counts.cancelled, 0);

    for (login, script) in &scripts {
        let job = store
            .job_for_login(login, Product::DEFAULT)
            .await
            .expect("read")
            .expect("job");
        let stats = sim.login_stats(&login.to_string());
        let file = setup.result_file(Product::DEFAULT, login);
        if script.invalid {
            assert_eq!(job.state, JobState::Failed, "{login}");
            let error = job.error.expect("error kept");
            assert_eq!(
                (error.code.as_str(), error.http_status),
                ("INVALID_LOGIN", Some(401))
            );
            assert_eq!(stats.investments_calls, 0);
            assert!(!file.exists(), "no result for an invalid login");
        } else {
            assert_eq!(job.state, JobState::Succeeded, "{login}");
            assert_eq!(stats.authorize_calls, 1, "{login}: one session");
            assert_eq!(
                stats.investments_calls,
                script.pending + 1,
                "{login}: polls"
            );
            assert_eq!(job.polls, script.pending + 1);
            let payload: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).expect("result file"))
                    .expect("result parses");
            assert!(
                payload.to_string().contains(&login.to_string()),
                "{login}: payload names its login"
            );
        }
        assert_eq!(stats.calls_after_success, 0);
        assert!(
            !stats.auth_header_seen,
            "no flinks-auth-key header when none is configured"
        );
    }
    assert_eq!(sim.violations(), vec![], "contract violations");

    // the CLI agrees with the store
    let status = flinkq_cli(
        &world.redis.url(),
        &setup.namespace,
        &["status", "--batch", "mixed", "--json"],
        None,
    );
    assert!(status.status.success());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status --json");
    assert_eq!(status["succeeded"], 500 - invalid);
    assert_eq!(status["failed"], invalid);
    assert_eq!(status["total"], 500);

    // SIGTERM: graceful, exit 0
    let exit = worker
        .sigterm(Duration::from_secs(10))
        .expect("worker exits on SIGTERM");
    assert!(exit.success(), "worker exit status {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_batch_loses_nothing() {
    let world = Scenario::start(Duration::from_millis(400)).await;
    let logins = world.logins(100, &Script::pending(4));
    world.enqueue("b", &logins).await;

    let mut first = WorkerProcess::spawn(&world.setup);
    world.wait_polled(&logins, 1, Duration::from_secs(30)).await;
    let exit = first
        .sigterm(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");
    let after_stop = world.store.counts(Some("b")).await.expect("counts");
    assert!(after_stop.unfinished() > 0, "stopped mid-batch");
    // nothing is left leased by the stopped worker
    let mut conn = world.store.connection();
    let leased: u64 = redis::cmd("ZCARD")
        .arg(world.store.keys().leases())
        .query_async(&mut conn)
        .await
        .expect("ZCARD");
    assert_eq!(leased, 0, "a graceful stop leaves no lease behind");

    let _second = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("b", Duration::from_secs(60)).await;
    assert_eq!(counts.succeeded, 100);
    for login in &logins {
        assert_eq!(world.sim.login_stats(&login.to_string()).authorize_calls, 1);
    }
    assert_eq!(world.sim.violations(), vec![]);
}

/// FLINKQ_WORKER_THREADS=1 runs the whole worker on one thread: a step
/// that blocked it (a payload read or a file written on the runtime's
/// thread) would stall every other step, the claim loop and the heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_one_thread_is_never_stalled_by_a_step() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world
        .setup
        .extra_env
        .push(("FLINKQ_WORKER_THREADS".into(), "1".into()));
    let mut logins = world.logins(40, &Script::pending(1));
    // payloads of a megabyte: parsed on a blocking thread, chunk by chunk
    let large = Script {
        faults: vec![ScriptedFault::poll(
            1,
            Fault::HugeBody {
                status: 200,
                megabytes: 1,
            },
        )],
        ..Script::default()
    };
    logins.extend(world.logins(4, &large));
    world.enqueue("one-thread", &logins).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world
        .wait_finished("one-thread", Duration::from_secs(120))
        .await;
    assert_eq!(counts.succeeded, 44, "{counts:?}");
    for login in &logins {
        assert!(
            world.setup.result_file(Product::DEFAULT, login).exists(),
            "{login}: result file"
        );
    }
}
