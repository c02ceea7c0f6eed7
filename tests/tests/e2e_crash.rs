//! Crash tests: the worker process is really SIGKILLed mid-poll.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::JobState;
use flinkq_shared::store::fields;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{SPACING_TOLERANCE, Script};
use flinkq_tests::worker_process::WorkerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_resumes_after_sigkill() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start(interval).await;
    world.setup.lease = Duration::from_secs(1);
    let logins = world.logins(60, &Script::pending(6));
    world.enqueue("crash", &logins).await;

    let mut worker = WorkerProcess::spawn(&world.setup);
    world.wait_polled(&logins, 2, Duration::from_secs(30)).await;
    worker.sigkill();
    world.sim.note_crash();
    let at_kill = world.store.counts(Some("crash")).await.expect("counts");
    assert!(
        at_kill.polling > 0,
        "killed while jobs were polling: {at_kill:?}"
    );

    let _restarted = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("crash", Duration::from_secs(60)).await;
    assert_eq!(counts.succeeded, 60);
    for login in &logins {
        let stats = world.sim.login_stats(&login.to_string());
        // polling resumed from the persisted session: no second Authorize
        assert_eq!(stats.authorize_calls, 1, "{login}");
        assert_eq!(stats.investments_calls, 7, "{login}");
        assert!(
            stats
                .min_poll_spacing
                .is_some_and(|gap| gap + SPACING_TOLERANCE >= interval),
            "{login}: polls {:?} apart",
            stats.min_poll_spacing
        );
        assert!(world.setup.result_file(Product::DEFAULT, login).exists());
    }
    assert_eq!(
        world.sim.violations(),
        vec![],
        "no poll sooner than the interval, none after success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_survives_restart() {
    let interval = Duration::from_millis(300);
    let timeout = Duration::from_secs(4);
    let mut world = Scenario::with_poll_timeout(interval, timeout).await;
    world.setup.lease = Duration::from_secs(1);
    let logins = world.logins(5, &Script::always_pending());
    world.enqueue("slow", &logins).await;

    let mut worker = WorkerProcess::spawn(&world.setup);
    world.wait_polled(&logins, 2, Duration::from_secs(30)).await;
    let mut deadlines = Vec::new();
    for login in &logins {
        let job = world
            .store
            .job_for_login(login, Product::DEFAULT)
            .await
            .expect("read")
            .expect("job");
        deadlines.push(job.deadline_ms.expect("deadline set before the first poll"));
    }
    worker.sigkill();
    world.sim.note_crash();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let _restarted = WorkerProcess::spawn(&world.setup);

    let counts = world.wait_finished("slow", timeout * 3).await;
    assert_eq!(counts.timed_out, 5);
    let slack = interval.as_millis() as u64;
    for (login, deadline) in logins.iter().zip(deadlines) {
        let job = world
            .store
            .job_for_login(login, Product::DEFAULT)
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
            finished >= deadline && finished <= deadline + slack,
            "{login}: timed out at {finished}, deadline {deadline}"
        );
        assert_eq!(job.error.map(|e| e.code), Some("POLL_TIMEOUT".to_owned()));
        assert_eq!(world.sim.login_stats(&login.to_string()).authorize_calls, 1);
    }
    // no poll after the deadline, none closer than the interval
    assert_eq!(world.sim.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_stored_by_a_lost_attempt_is_not_fetched_again() {
    // An attempt that stored the payload but whose commit was lost (crash,
    // expired lease) leaves the result file behind: the next attempt of the
    // same job finishes from it instead of polling Flinks after its 200.
    let interval = Duration::from_millis(300);
    let mut world = Scenario::start(interval).await;
    world.setup.lease = Duration::from_secs(1);
    let login = world.logins(1, &Script::always_pending())[0];
    world.enqueue("lost", &[login]).await;
    let worker = WorkerProcess::spawn(&world.setup);
    world
        .wait_polled(&[login], 1, Duration::from_secs(20))
        .await;
    drop(worker); // SIGKILL
    // what the lost attempt leaves: the login's file and the job's staged
    // link (a file alone is not this job's: any stale worker may have
    // written it), and in Redis one claim more than the job's last commit
    let file = world.setup.result_file(Product::DEFAULT, &login);
    let payload = br#"{"Investments": [], "stored": "by an earlier attempt"}"#;
    let job = world.job_of(&login).await;
    let staged = world.setup.staged_file(&job.run_key());
    std::fs::write(&staged, payload).expect("write staged result");
    std::fs::write(&file, payload).expect("write result");
    let _: i64 = redis::cmd("HINCRBY")
        .arg(world.store.keys().job(job.id))
        .arg(fields::CLAIMS)
        .arg(1)
        .query_async(&mut world.store.connection())
        .await
        .expect("the lost attempt's claim");
    let polls_at_write = world.sim.login_stats(&login.to_string()).investments_calls;

    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("lost", Duration::from_secs(20)).await;
    assert_eq!(counts.succeeded, 1);
    let polls = world.sim.login_stats(&login.to_string()).investments_calls;
    assert_eq!(
        polls, polls_at_write,
        "polled again after the payload was stored"
    );
    assert!(
        std::fs::read_to_string(&file)
            .expect("file")
            .contains("earlier attempt"),
        "the stored payload is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_link_is_not_looked_for_on_a_jobs_first_claim_since_its_commit() {
    // The same files, but no attempt was lost: every claim of the job so
    // far committed. No payload of this run can be waiting, and the worker
    // goes on polling instead of taking the files for this job's.
    let interval = Duration::from_millis(300);
    let world = Scenario::start(interval).await;
    let login = world.logins(1, &Script::pending(4))[0];
    world.enqueue("kept", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world
        .wait_polled(&[login], 1, Duration::from_secs(20))
        .await;
    let job = world.job_of(&login).await;
    let staged = world.setup.staged_file(&job.run_key());
    let forged = br#"{"Investments": [], "stored": "by no attempt"}"#;
    std::fs::write(&staged, forged).expect("write staged result");
    let counts = world.wait_finished("kept", Duration::from_secs(20)).await;
    assert_eq!(counts.succeeded, 1);
    let file = world.setup.result_file(Product::DEFAULT, &login);
    assert!(
        !std::fs::read_to_string(&file)
            .expect("file")
            .contains("by no attempt"),
        "the job's own 200 is its result"
    );
}
