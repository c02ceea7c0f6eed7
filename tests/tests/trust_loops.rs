//! Every loop is bounded and spaced, whatever the provider answers: one test
//! per fault of issue 10, against a real worker, Redis and the simulator,
//! with intervals of a few hundred milliseconds.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::store::CommitOutcome;
use flinkq_shared::{JobState, LocalCode, LoginId, Outcome, Policy, Tick, transition};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::{Fault, SPACING_TOLERANCE, Script, ScriptedFault};
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

const INTERVAL: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_secs(60);

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_pending_forever_is_spaced_and_bounded() {
    let mut world = Scenario::start(INTERVAL).await;
    world.setup.extra_env = env(&[("FLINKQ_AUTHORIZE_TIMEOUT", "2s")]);
    let script = Script {
        faults: vec![ScriptedFault::authorize(
            ScriptedFault::EVERY_CALL,
            Fault::answer(202, Some("OPERATION_PENDING")),
        )],
        ..Script::default()
    };
    let login = world.logins(1, &script)[0];
    world.enqueue("pending", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("pending", WAIT).await;

    let job = world.job_of(&login).await;
    assert_eq!(job.state, JobState::TimedOut, "{job:?}");
    let error = job.error.clone().expect("error kept");
    assert_eq!(error.code, LocalCode::AuthorizeTimeout.as_str(), "{error}");
    let lived = job.finished_ms.expect("finished") - job.started_ms.expect("started");
    assert!(
        lived >= 2_000,
        "ended {lived} ms after the first claim, before the bound"
    );

    let stats = world.sim.login_stats(&login.to_string());
    assert_eq!(stats.investments_calls, 0);
    // 2 s of one Authorize per 200 ms interval: at most 11 calls, not thousands
    assert!(
        (2..=11).contains(&stats.authorize_calls),
        "{} Authorize calls",
        stats.authorize_calls
    );
    let gap = stats.min_authorize_spacing().expect("two calls or more");
    assert!(
        gap + SPACING_TOLERANCE >= INTERVAL,
        "Authorize {gap:?} apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lost_forever_is_spaced_and_bounded() {
    let mut world = Scenario::start(INTERVAL).await;
    world.setup.extra_env = env(&[("FLINKQ_MAX_SESSIONS", "3")]);
    let script = Script {
        faults: vec![ScriptedFault::poll(
            ScriptedFault::EVERY_CALL,
            Fault::ExpireSession,
        )],
        ..Script::default()
    };
    let login = world.logins(1, &script)[0];
    world.enqueue("expired", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("expired", WAIT).await;

    let job = world.job_of(&login).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let error = job.error.clone().expect("error kept");
    assert_eq!(
        (error.code.as_str(), error.http_status),
        ("SESSION_EXPIRED", Some(401)),
        "the Flinks code is kept"
    );
    assert!(
        error.message.starts_with("gave up after 3 sessions"),
        "{}",
        error.message
    );
    assert_eq!((job.sessions, job.auths), (3, 3));

    let stats = world.sim.login_stats(&login.to_string());
    assert_eq!(
        (stats.authorize_calls, stats.investments_calls),
        (3, 3),
        "one Authorize + poll pair per session, max_sessions of them"
    );
    let gap = stats.min_gap_after_a_poll().expect("calls after a poll");
    assert!(
        gap + SPACING_TOLERANCE >= INTERVAL,
        "a call came {gap:?} after a poll (re-authorize included)"
    );
    assert_eq!(world.sim.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_a_year_on_authorize_is_capped_and_bounded() {
    const YEAR: u64 = 31_536_000;
    let mut world = Scenario::start(INTERVAL).await;
    // retry cap 1 s (the test setup's FLINKQ_RETRY_CAP); attempts plenty, so
    // only the bound can end the login rate-limited forever
    world.setup.extra_env = env(&[
        ("FLINKQ_AUTHORIZE_TIMEOUT", "3s"),
        ("FLINKQ_MAX_ATTEMPTS", "100"),
    ]);
    let once = world.logins(
        1,
        &Script {
            faults: vec![ScriptedFault::authorize(
                1,
                Fault::RateLimited {
                    retry_after_secs: YEAR,
                },
            )],
            ..Script::default()
        },
    )[0];
    let always = world.logins(
        1,
        &Script {
            faults: vec![ScriptedFault::authorize(
                ScriptedFault::EVERY_CALL,
                Fault::RateLimited {
                    retry_after_secs: YEAR,
                },
            )],
            ..Script::default()
        },
    )[0];
    world.enqueue("year", &[once, always]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("year", WAIT).await;
    assert_eq!((counts.succeeded, counts.timed_out), (1, 1), "{counts:?}");
    let events = world.store.batch_events(100).await.expect("events");
    assert!(
        events.iter().any(|event| event.batch == "year"),
        "the batch completed: {events:?}"
    );

    // a year asked, the retry cap (1 s) waited
    assert_eq!(world.job_of(&once).await.state, JobState::Succeeded);
    let stats = world.sim.login_stats(&once.to_string());
    assert_eq!(stats.authorize_calls, 2);
    let waited = stats.authorize_times[1] - stats.authorize_times[0];
    assert!(
        waited + SPACING_TOLERANCE >= Duration::from_secs(1),
        "retried after {waited:?}"
    );

    // a year asked every time: retried once per cap until the 3 s bound
    let job = world.job_of(&always).await;
    assert_eq!(job.state, JobState::TimedOut, "{job:?}");
    let code = job.error.map(|e| e.code).unwrap_or_default();
    assert!(
        code == "TOO_MANY_REQUESTS" || code == LocalCode::AuthorizeTimeout.as_str(),
        "{code}"
    );
    let stats = world.sim.login_stats(&always.to_string());
    assert!(
        (1..=4).contains(&stats.authorize_calls),
        "{} Authorize calls in a 3 s bound, 1 s apart",
        stats.authorize_calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_that_crashes_its_worker_fails_as_a_poison_pill() {
    const MAX_CLAIMS: u32 = 3;
    let mut world = Scenario::start(INTERVAL).await;
    world.setup.extra_env = env(&[("FLINKQ_MAX_CLAIMS", "3")]);
    // Authorize never answers within the test: the call stays in flight
    // until the worker is killed, as if the job took the worker down.
    let script = Script {
        faults: vec![ScriptedFault::authorize(
            ScriptedFault::EVERY_CALL,
            Fault::Slow { millis: 120_000 },
        )],
        ..Script::default()
    };
    let login = world.logins(1, &script)[0];
    world.enqueue("poison", &[login]).await;

    let mut kills = 0;
    loop {
        let mut worker = WorkerProcess::spawn(&world.setup);
        let seen = world.sim.login_stats(&login.to_string()).authorize_calls;
        let in_flight = wait_for("the job's call in flight, or its end", WAIT, async || {
            if world.sim.login_stats(&login.to_string()).authorize_calls > seen {
                return Some(true);
            }
            let job = world
                .store
                .job_for_login(&login, Product::DEFAULT)
                .await
                .ok()??;
            job.state.is_terminal().then_some(false)
        })
        .await;
        if !in_flight {
            break;
        }
        worker.sigkill();
        world.sim.note_crash();
        kills += 1;
        assert!(
            kills <= MAX_CLAIMS,
            "killed {kills} times; the job still runs"
        );
    }

    let job = world.job_of(&login).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let error = job.error.clone().expect("error kept");
    assert_eq!(error.code, LocalCode::PoisonPill.as_str(), "{error}");
    assert!(
        error.message.contains("claimed 4 times"),
        "{}",
        error.message
    );
    let stats = world.sim.login_stats(&login.to_string());
    assert_eq!(
        (stats.authorize_calls, kills),
        (MAX_CLAIMS, MAX_CLAIMS),
        "Flinks saw one call per crash, max_claims of them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_without_a_session_is_reaped_at_its_authorize_deadline_even_never_claimed_again() {
    let world = Scenario::start(INTERVAL).await;
    let login = LoginId::random();
    world.enqueue("unclaimed", &[login]).await;
    // claimed once, its worker dies mid-Authorize (no commit), and no
    // worker ever claims it again: only the reaper runs
    let claimed = world
        .store
        .claim_bounded(1, Duration::from_millis(100), Duration::from_millis(400))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reaped = world.store.reap(100).await.expect("reap");
    assert_eq!(reaped.requeued, 1, "the dead worker's lease");
    let mut timed_out = reaped.timed_out;
    wait_for("the reaper to end the job", WAIT, async || {
        timed_out += world.store.reap(100).await.ok()?.timed_out;
        (timed_out == 1).then_some(())
    })
    .await;
    let job = world.job_of(&login).await;
    assert_eq!(job.state, JobState::TimedOut);
    assert_eq!(
        job.error.map(|e| e.code).as_deref(),
        Some(LocalCode::AuthorizeTimeout.as_str())
    );
    assert!(job.finished_ms.expect("finished") >= claimed.now_ms + 400);
    let counts = world.wait_finished("unclaimed", WAIT).await;
    assert_eq!(counts.timed_out, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_count_until_a_commit_and_a_holder_that_comes_back_alive_gives_its_claim_back() {
    let world = Scenario::start(INTERVAL).await;
    let login = LoginId::random();
    world.enqueue("claims", &[login]).await;
    let lease = Duration::from_millis(100);
    let long = Duration::from_secs(10);
    let tick = |now_ms| Tick {
        now_ms,
        jitter: 0.0,
    };
    // two holders lose their lease (crashed, or stalled past it)
    let mut stale = Vec::new();
    for expected in 1..=2 {
        let claimed = world.store.claim(1, lease).await.expect("claim");
        assert_eq!(claimed.jobs[0].claims, expected, "claim {expected}");
        stale.push(claimed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        world.store.reap(100).await.expect("reap");
    }
    let claimed = world.store.claim(1, long).await.expect("claim");
    assert_eq!(claimed.jobs[0].claims, 3);
    // the second one was alive after all: its fenced commit gives its claim back
    let late = &stale[1].jobs[0];
    let t = transition(
        late,
        Outcome::Pending,
        tick(stale[1].now_ms),
        &Policy::default(),
    );
    assert_eq!(late.apply(&t).await.expect("commit"), CommitOutcome::Fenced);
    assert_eq!(world.job_of(&login).await.claims, 2);
    // a step given back unstarted at shutdown does not count either
    let job = &claimed.jobs[0];
    job.release().await.expect("release");
    assert_eq!(world.job_of(&login).await.claims, 1);
    // an applied commit resets the count
    let claimed = world.store.claim(1, long).await.expect("claim");
    let job = &claimed.jobs[0];
    assert_eq!(job.claims, 2);
    let t = transition(
        job,
        Outcome::Pending,
        tick(claimed.now_ms),
        &Policy::default(),
    );
    assert_eq!(job.apply(&t).await.expect("commit"), CommitOutcome::Applied);
    assert_eq!(world.job_of(&login).await.claims, 0);
}
