//! The provider can't hurt us: one test per hostile answer of the Flinks
//! simulator, named after the fault it pins. A real worker process, a real
//! redis-server, real HTTP.

use std::time::Duration;

use flinkq_shared::{JobSnapshot, JobState, LoginId, Product};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, RecordingServer, Script, ScriptedFault, SimConfig};
use flinkq_tests::worker_process::WorkerProcess;

const INTERVAL: Duration = Duration::from_millis(200);

fn on_poll(call: u32, fault: Fault) -> Script {
    Script {
        faults: vec![ScriptedFault::poll(call, fault)],
        ..Script::default()
    }
}

fn error_of(job: &JobSnapshot) -> (String, Option<u16>, String) {
    let error = job.error.clone().expect("the job keeps its error");
    (error.code, error.http_status, error.message)
}

/// Files the worker left in the results directory (or a product's
/// directory in it) besides finished results.
fn temp_files(world: &Scenario) -> Vec<String> {
    let dir = &world.setup.results_dir;
    std::iter::once(dir.clone())
        .chain(Product::all().map(|product| dir.join(product.as_str())))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".tmp-"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_is_not_followed_and_key_never_leaves() {
    const KEY: &str = "flinks-secret-key-0123";
    let mut world = Scenario::start_with(
        INTERVAL,
        SimConfig {
            auth_key: Some(KEY.into()),
            ..SimConfig::default()
        },
    )
    .await;
    let elsewhere = RecordingServer::start().await.expect("recorder");
    let location = format!("{}/v3/steal", elsewhere.base_url());
    let on_authorize = world.logins(
        1,
        &Script {
            faults: vec![ScriptedFault::authorize(
                1,
                Fault::Redirect {
                    status: 307,
                    location: location.clone(),
                },
            )],
            ..Script::default()
        },
    )[0];
    let on_poll_login = world.logins(
        1,
        &on_poll(
            1,
            Fault::Redirect {
                status: 302,
                location,
            },
        ),
    )[0];
    world
        .setup
        .extra_env
        .push(("FLINKQ_AUTH_KEY".into(), KEY.into()));
    world
        .enqueue("redirect", &[on_authorize, on_poll_login])
        .await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world
        .wait_finished("redirect", Duration::from_secs(60))
        .await;

    for (login, status) in [(on_authorize, 307), (on_poll_login, 302)] {
        let job = world.job_of(&login).await;
        assert_eq!(job.state, JobState::Failed, "{login}");
        let (code, http_status, message) = error_of(&job);
        assert_eq!(
            (code.as_str(), http_status),
            (format!("HTTP_{status}").as_str(), Some(status))
        );
        assert!(message.contains("never follows redirects"), "{message}");
        // the key did go where it belongs
        assert!(world.sim.login_stats(&login.to_string()).auth_header_seen);
    }
    assert_eq!(
        world
            .sim
            .login_stats(&on_poll_login.to_string())
            .investments_calls,
        1,
        "a redirect is a failure for good, not retried"
    );
    assert_eq!(
        elsewhere.requests(),
        vec![],
        "nothing, let alone the key, reached the redirect's target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_error_bodies_do_not_grow_the_worker() {
    // Before: each 100 MB page was read whole (then copied), four of them
    // took a worker to 700 MB. Now at most 64 KiB of each is read.
    const PAGES_MB: u32 = 100;
    const BOUND: u64 = 150 * 1024 * 1024;
    let mut world = Scenario::start(INTERVAL).await;
    let huge = || Fault::HugeBody {
        status: 500,
        megabytes: PAGES_MB,
    };
    let script = Script {
        faults: vec![
            ScriptedFault::authorize(1, huge()),
            ScriptedFault::poll(1, huge()),
        ],
        ..Script::default()
    };
    let logins = world.logins(4, &script);
    world.enqueue("huge", &logins).await;
    world.setup.concurrency = 8;
    let worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("huge", Duration::from_secs(90)).await;
    let peak = worker.peak_rss_bytes().expect("the worker is running");
    assert!(
        peak < BOUND,
        "the worker peaked at {} MB after eight {PAGES_MB} MB error pages",
        peak / 1_000_000
    );
    assert_eq!(counts.succeeded, 4, "the jobs still finish");
    for login in &logins {
        let job = world.job_of(login).await;
        assert_eq!(job.retries, 2, "{login}: both 500 pages were retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_payload_fails_the_job_not_the_process() {
    let mut world = Scenario::start(INTERVAL).await;
    world
        .setup
        .extra_env
        .push(("FLINKQ_MAX_PAYLOAD".into(), "1MiB".into()));
    let oversize = world.logins(
        1,
        &on_poll(
            1,
            Fault::HugeBody {
                status: 200,
                megabytes: 8,
            },
        ),
    )[0];
    world.enqueue("big", &[oversize]).await;
    let mut worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("big", Duration::from_secs(60)).await;

    let job = world.job_of(&oversize).await;
    assert_eq!(job.state, JobState::Failed);
    let (code, http_status, message) = error_of(&job);
    assert_eq!(
        (code.as_str(), http_status),
        ("PAYLOAD_TOO_LARGE", Some(200))
    );
    assert!(message.contains("FLINKQ_MAX_PAYLOAD"), "{message}");
    assert!(
        !world
            .setup
            .result_file(Product::DEFAULT, &oversize)
            .exists(),
        "no result file for a refused payload"
    );
    assert_eq!(
        temp_files(&world),
        Vec::<String>::new(),
        "temp file removed"
    );

    // the same process goes on serving jobs
    assert!(worker.try_exit_status().is_none(), "the worker is still up");
    let next = world.logins(1, &Script::pending(1))[0];
    world.enqueue("after", &[next]).await;
    world.wait_finished("after", Duration::from_secs(60)).await;
    assert_eq!(world.job_of(&next).await.state, JobState::Succeeded);
    assert!(worker.try_exit_status().is_none(), "the worker is still up");

    // the redis sink holds a payload in memory: the same limit bounds it
    drop(worker);
    world
        .setup
        .extra_env
        .push(("FLINKQ_RESULTS".into(), "redis".into()));
    let in_memory = world.logins(
        1,
        &on_poll(
            1,
            Fault::HugeBody {
                status: 200,
                megabytes: 8,
            },
        ),
    )[0];
    let fits = world.logins(1, &Script::default())[0];
    world.enqueue("redis", &[in_memory, fits]).await;
    let mut worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("redis", Duration::from_secs(60)).await;
    let (code, _, _) = error_of(&world.job_of(&in_memory).await);
    assert_eq!(code, "PAYLOAD_TOO_LARGE");
    assert_eq!(world.job_of(&fits).await.state, JobState::Succeeded);
    assert!(worker.try_exit_status().is_none(), "the worker is still up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_times_out_and_is_retried() {
    let mut world = Scenario::start(INTERVAL).await;
    let (_worker, job, stats) = world
        .run_one(
            &on_poll(1, Fault::StalledBody),
            &[("FLINKQ_HTTP_TIMEOUT", "500ms")],
        )
        .await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.retries, 1, "the stalled body was one transient failure");
    assert_eq!(stats.investments_calls, 2);
    assert_eq!(
        temp_files(&world),
        Vec::<String>::new(),
        "temp file removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_payload_is_not_a_success() {
    let mut world = Scenario::start(INTERVAL).await;
    let (_worker, job, stats) = world.run_one(&on_poll(1, Fault::InvalidUtf8), &[]).await;
    assert_eq!(job.state, JobState::Failed);
    let (code, http_status, message) = error_of(&job);
    assert_eq!((code.as_str(), http_status), ("BAD_BODY", Some(200)));
    assert!(message.contains("UTF-8"), "{message}");
    assert_eq!(stats.investments_calls, 1);
    assert!(
        !world
            .setup
            .result_file(Product::DEFAULT, &job.login)
            .exists(),
        "no result file for a payload that is not UTF-8"
    );
    assert_eq!(
        temp_files(&world),
        Vec::<String>::new(),
        "temp file removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistyped_message_keeps_the_flinks_code() {
    // Before: `Message` as an object failed the whole envelope, and the
    // SESSION_EXPIRED answer became a permanent HTTP_401.
    let mut world = Scenario::start(INTERVAL).await;
    let fault = Fault::MistypedEnvelope {
        status: 401,
        code: "SESSION_EXPIRED".into(),
    };
    let (_worker, job, stats) = world.run_one(&on_poll(1, fault), &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.auths, 2, "the session was lost, so authorized again");
    assert_eq!((stats.authorize_calls, stats.investments_calls), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_at_401_is_transient() {
    let mut world = Scenario::start(INTERVAL).await;
    let fault = Fault::answer(401, Some("TOO_MANY_REQUESTS"));
    let (_worker, job, stats) = world.run_one(&on_poll(1, fault), &[]).await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.retries, 1);
    assert_eq!(job.auths, 1, "the same session, polled again");
    assert_eq!(stats.investments_calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_http_date_is_honoured() {
    const AFTER: Duration = Duration::from_secs(2);
    let mut world = Scenario::start(INTERVAL).await;
    let fault = Fault::RetryAfterDate {
        status: 429,
        code: Some("TOO_MANY_REQUESTS".into()),
        after_secs: AFTER.as_secs(),
    };
    // a retry cap above the date, so only the date decides the wait
    let (_worker, job, stats) = world
        .run_one(&on_poll(1, fault), &[("FLINKQ_RETRY_CAP", "10s")])
        .await;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(stats.investments_calls, 2);
    let waited = stats.investments_times[1] - stats.investments_times[0];
    // the worker's schedule is on Redis' millisecond clock, the simulator's
    // arrival times on its own: allow a few ms of disagreement
    assert!(
        waited + Duration::from_millis(20) >= AFTER,
        "polled again after {waited:?}; the Retry-After date was {AFTER:?} after the answer's Date"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_result_file_write_is_never_taken_as_another_attempts_result() {
    // Before: a `<loginId>.json` newer than the job's first claim passed for
    // this job's payload, so a stale worker's late write (an earlier job of
    // the login, a fenced attempt) made the job skip its polls and succeed
    // with that payload.
    let world = Scenario::start(INTERVAL).await;
    let login: LoginId = world.logins(1, &Script::pending(4))[0];
    world.enqueue("stale", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world
        .wait_polled(&[login], 1, Duration::from_secs(30))
        .await;
    let file = world.setup.result_file(Product::DEFAULT, &login);
    std::fs::write(
        &file,
        br#"{"Investments": [], "stale": "another job's write"}"#,
    )
    .expect("stale write");

    world.wait_finished("stale", Duration::from_secs(60)).await;
    let job = world.job_of(&login).await;
    assert_eq!(job.state, JobState::Succeeded);
    let stats = world.sim.login_stats(&login.to_string());
    assert_eq!(
        stats.investments_calls, 5,
        "4 pending answers, then the 200"
    );
    let stored = std::fs::read_to_string(&file).expect("result file");
    assert!(!stored.contains("another job's write"), "{stored}");
    let payload: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(payload["Investments"][0]["Login"]["Id"], login.to_string());
    assert_eq!(world.sim.violations(), vec![]);
}
