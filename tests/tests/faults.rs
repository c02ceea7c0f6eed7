//! One test per fault the Flinks simulator injects, named after it: each
//! asserts the job's terminal state and what the simulator saw.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::{JobSnapshot, JobState};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, LoginStats, SPACING_TOLERANCE, Script, ScriptedFault, SimConfig};
use flinkq_tests::worker_process::WorkerProcess;

const INTERVAL: Duration = Duration::from_millis(200);

/// Runs one login with `script` through a worker; returns the finished job
/// and what the simulator saw of it, after checking the simulator saw no
/// contract violation.
async fn run_one(script: Script, extra_env: &[(&str, &str)]) -> (JobSnapshot, LoginStats) {
    let mut world = Scenario::start(INTERVAL).await;
    world.setup.extra_env = extra_env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let login = world.logins(1, &script)[0];
    world.enqueue("fault", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("fault", Duration::from_secs(30)).await;
    let job = world
        .store
        .job_for_login(&login, Product::DEFAULT)
        .await
        .expect("read")
        .expect("job");
    let stats = world.sim.login_stats(&login.to_string());
    assert_eq!(world.sim.violations(), vec![], "contract violations");
    if let Some(gap) = stats.min_poll_spacing {
        assert!(gap + SPACING_TOLERANCE >= INTERVAL, "polls {gap:?} apart");
    }
    (job, stats)
}

fn polls_fail(calls: &[u32], fault: Fault) -> Vec<ScriptedFault> {
    calls
        .iter()
        .map(|call| ScriptedFault::poll(*call, fault.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_5xx_are_retried_until_success() {
    let script = Script {
        pending: 1,
        faults: [
            polls_fail(&[1], Fault::answer(503, None)),
            polls_fail(&[2], Fault::answer(500, None)),
            vec![ScriptedFault::authorize(1, Fault::answer(502, None))],
        ]
        .concat(),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.retries, 3);
    assert_eq!(stats.authorize_calls, 2);
    assert_eq!(stats.investments_calls, 4, "2 faults + 1 pending + the 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_429_waits_for_retry_after() {
    let script = Script {
        faults: vec![ScriptedFault::authorize(
            1,
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        )],
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(stats.authorize_calls, 2);
    let waited = stats.authorize_times[1] - stats.authorize_times[0];
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, Retry-After said 1 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_retried() {
    let script = Script {
        pending: 1,
        faults: polls_fail(&[2], Fault::Reset),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.retries, 1);
    assert_eq!(stats.investments_calls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_past_the_client_timeout_is_retried() {
    let script = Script {
        faults: polls_fail(&[1], Fault::Slow { millis: 2_000 }),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[("FLINKQ_HTTP_TIMEOUT", "300ms")]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.retries, 1);
    assert_eq!(stats.investments_calls, 2);
    let gap = stats.investments_times[1] - stats.investments_times[0];
    assert!(
        gap < Duration::from_millis(1_900),
        "gave up at the client timeout, not the answer ({gap:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_200_fails_as_a_bad_answer() {
    let script = Script {
        faults: polls_fail(&[1], Fault::MalformedJson),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("BAD_BODY", Some(200))
    );
    assert!(
        error
            .message
            .contains("Investments answered 200 with a body that is not a payload"),
        "{}",
        error.message
    );
    assert_eq!(stats.investments_calls, 1, "no retry of a malformed 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expired_mid_poll_authorizes_again_with_the_same_deadline() {
    let script = Script {
        pending: 4,
        expire_session_after_polls: Some(2),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(
        job.auths, 3,
        "three sessions: 2 polls each until the payload"
    );
    assert_eq!(stats.authorize_calls, 3);
    // the deadline was set once, before the first poll: it is within one
    // poll timeout (60 s in tests) of the first /Investments call
    let deadline = job.deadline_ms.expect("deadline");
    let started = job.started_ms.expect("started");
    assert!(
        deadline - started <= 60_000 + 1_000,
        "deadline {deadline} started {started}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_nonexistent_mid_poll_authorizes_again() {
    let script = Script {
        pending: 2,
        faults: polls_fail(&[2], Fault::answer(400, Some("SESSION_NONEXISTENT"))),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!((job.auths, stats.authorize_calls), (2, 2));
    assert_eq!(job.retries, 0, "a lost session is not a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_dispatched_is_pending_not_an_error() {
    let script = Script {
        faults: polls_fail(&[1, 2], Fault::answer(202, Some("OPERATION_DISPATCHED"))),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!((job.retries, job.polls), (0, 3));
    assert_eq!(stats.investments_calls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_challenge_203_fails_for_the_user() {
    let script = Script {
        pending: 1,
        faults: polls_fail(&[2], Fault::answer(203, None)),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("HTTP_203", Some(203))
    );
    assert_eq!(stats.investments_calls, 2, "no call after the challenge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_later_401_is_transient_not_an_invalid_login() {
    let script = Script {
        faults: vec![ScriptedFault::authorize(
            1,
            Fault::answer(401, Some("RETRY_LATER")),
        )],
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(stats.authorize_calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_login_fails_at_once_keeping_code_status_and_message() {
    let script = Script::invalid();
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("INVALID_LOGIN", Some(401))
    );
    assert!(
        error.message.contains("reconnect"),
        "Flinks' message kept: {}",
        error.message
    );
    assert_eq!((stats.authorize_calls, stats.investments_calls), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_request_fails_at_once() {
    let script = Script {
        faults: vec![ScriptedFault::authorize(
            1,
            Fault::answer(400, Some("INVALID_REQUEST")),
        )],
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[]).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.error.map(|e| e.code), Some("INVALID_REQUEST".into()));
    assert_eq!(stats.authorize_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_5xx_fails_after_max_attempts() {
    let script = Script {
        faults: polls_fail(&[1, 2, 3, 4, 5], Fault::answer(503, None)),
        ..Script::default()
    };
    let (job, stats) = run_one(script, &[("FLINKQ_MAX_ATTEMPTS", "3")]).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("HTTP_503", Some(503))
    );
    assert!(
        error.message.contains("gave up after 3"),
        "{}",
        error.message
    );
    assert_eq!(stats.investments_calls, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_5xx_on_a_batch_loses_nothing() {
    let world = Scenario::start_with(
        INTERVAL,
        SimConfig {
            random_5xx_rate: 0.2,
            ..SimConfig::default()
        },
    )
    .await;
    let logins = world.logins(200, &Script::pending(2));
    world.enqueue("random", &logins).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("random", Duration::from_secs(60)).await;
    assert_eq!(counts.succeeded, 200);
    let totals = world.sim.totals();
    assert!(
        totals.faults > 50,
        "about 20% of ~800 calls were faults: {totals:?}"
    );
    assert_eq!(totals.successes, 200);
    assert_eq!(world.sim.violations(), vec![]);
}
