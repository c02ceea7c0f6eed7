//! Crash tests: the worker process is really SIGKILLed mid-poll.

use std::time::Duration;

use flinkq_shared::store::{Store, StoreConfig};
use flinkq_shared::{JobState, LoginId};
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::sim::{Script, SimConfig, Simulator};
use flinkq_tests::worker_process::{WorkerProcess, WorkerSetup, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_resumes_after_sigkill() {
    let redis = RedisServer::start().expect("redis-server");
    let interval = Duration::from_millis(500);
    let sim = Simulator::start(SimConfig {
        min_poll_interval: interval,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let logins: Vec<LoginId> = (0..60).map(|_| LoginId::random()).collect();
    for login in &logins {
        sim.set_script(
            &login.to_string(),
            Script {
                pending: 6,
                ..Script::default()
            },
        );
    }
    let work = tempfile::tempdir().expect("tempdir");
    let setup = WorkerSetup {
        poll_interval: interval,
        lease: Duration::from_secs(1),
        ..WorkerSetup::new(
            &redis.url(),
            &sim.authorize_url(),
            &sim.investments_url(),
            work.path(),
        )
    };
    let store = Store::connect(&StoreConfig::new(redis.url(), &setup.namespace))
        .await
        .expect("store");
    store.enqueue("crash", &logins).await.expect("enqueue");

    let mut worker = WorkerProcess::spawn(&setup);
    wait_for(
        "every job to be mid-poll",
        Duration::from_secs(30),
        async || {
            logins
                .iter()
                .all(|l| sim.login_stats(&l.to_string()).investments_calls >= 2)
                .then_some(())
        },
    )
    .await;
    worker.sigkill();
    let at_kill = store.counts(Some("crash")).await.expect("counts");
    assert!(
        at_kill.polling > 0,
        "killed while jobs were polling: {at_kill:?}"
    );

    let _restarted = WorkerProcess::spawn(&setup);
    let counts = wait_for(
        "every job to finish after the restart",
        Duration::from_secs(60),
        async || {
            let counts = store.counts(Some("crash")).await.ok()?;
            (counts.unfinished() == 0).then_some(counts)
        },
    )
    .await;
    assert_eq!(counts.succeeded, 60);
    for login in &logins {
        let stats = sim.login_stats(&login.to_string());
        // polling resumed from the persisted session: no second Authorize
        assert_eq!(stats.authorize_calls, 1, "{login}");
        assert_eq!(stats.investments_calls, 7, "{login}");
        assert!(
            stats
                .min_poll_spacing
                .is_some_and(|gap| gap + Duration::from_millis(5) >= interval),
            "{login}: polls {:?} apart",
            stats.min_poll_spacing
        );
        assert!(setup.results_dir.join(format!("{login}.json")).exists());
    }
    assert_eq!(
        sim.violations(),
        vec![],
        "no poll sooner than the interval, none after success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_survives_restart() {
    let redis = RedisServer::start().expect("redis-server");
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_secs(4);
    let sim = Simulator::start(SimConfig {
        min_poll_interval: interval,
        poll_timeout: timeout,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let logins: Vec<LoginId> = (0..5).map(|_| LoginId::random()).collect();
    for login in &logins {
        sim.set_script(
            &login.to_string(),
            Script {
                always_pending: true,
                ..Script::default()
            },
        );
    }
    let work = tempfile::tempdir().expect("tempdir");
    let setup = WorkerSetup {
        poll_interval: interval,
        poll_timeout: timeout,
        lease: Duration::from_secs(1),
        ..WorkerSetup::new(
            &redis.url(),
            &sim.authorize_url(),
            &sim.investments_url(),
            work.path(),
        )
    };
    let store = Store::connect(&StoreConfig::new(redis.url(), &setup.namespace))
        .await
        .expect("store");
    store.enqueue("slow", &logins).await.expect("enqueue");

    let mut worker = WorkerProcess::spawn(&setup);
    wait_for("polling to start", Duration::from_secs(30), async || {
        logins
            .iter()
            .all(|l| sim.login_stats(&l.to_string()).investments_calls >= 2)
            .then_some(())
    })
    .await;
    let mut deadlines = Vec::new();
    for login in &logins {
        let job = store
            .job_for_login(login)
            .await
            .expect("read")
            .expect("job");
        deadlines.push(job.deadline_ms.expect("deadline set before the first poll"));
    }
    worker.sigkill();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let _restarted = WorkerProcess::spawn(&setup);

    wait_for("every job to time out", timeout * 3, async || {
        let counts = store.counts(Some("slow")).await.ok()?;
        (counts.timed_out == 5).then_some(())
    })
    .await;
    let slack = interval.as_millis() as u64;
    for (login, deadline) in logins.iter().zip(deadlines) {
        let job = store
            .job_for_login(login)
            .await
            .expect("read")
            .expect("job");
        assert_eq!(job.state, JobState::TimedOut);
        assert_eq!(
            job.deadline_ms,
            Some(deadline),
            "{login}: the restart did not move the deadline"
        );
        let finished = job.finished_ms.expect("finished");
        assert!(
            finished + slack >= deadline && finished <= deadline + slack,
            "{login}: timed out at {finished}, deadline {deadline}"
        );
        assert_eq!(job.error.map(|e| e.code), Some("POLL_TIMEOUT".to_owned()));
        let stats = sim.login_stats(&login.to_string());
        assert_eq!(stats.authorize_calls, 1);
    }
    // no poll after the deadline, none closer than the interval
    assert_eq!(sim.violations(), vec![]);
}
