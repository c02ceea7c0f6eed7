//! Every Flinks product end to end: real worker processes (one really
//! SIGKILLed mid-poll) against the simulator, which checks each product's
//! contract (no `GET …Async` before the 202, no poll closer than the
//! interval, nothing after the 200, Attributes only after GetAccountsDetail's
//! 200 in the same session).

use std::time::Duration;

use flinkq_shared::{JobState, LoginId, Product};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

/// The top-level key of each product's payload.
fn payload_key(product: Product) -> &'static str {
    product
        .stages()
        .last()
        .expect("a product has a stage")
        .payload
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_product_runs_end_to_end_with_a_worker_killed_mid_poll() {
    let interval = Duration::from_millis(500);
    let mut world = Scenario::start(interval).await;
    world.setup.lease = Duration::from_secs(2);
    // the same 200 logins under every product at once: 180 answer after
    // three 202s (per product), 20 are invalid (Authorize fails)
    let mut logins = world.logins(180, &Script::pending(3));
    let invalid = world.logins(20, &Script::invalid());
    logins.extend(&invalid);
    let products: Vec<Product> = Product::all().collect();
    for product in &products {
        world.enqueue_product("every", *product, &logins).await;
    }
    let expected_total = (logins.len() * products.len()) as u64;
    assert_eq!(
        world.store.counts(Some("every")).await.expect("counts").total,
        expected_total,
        "one job per (login, product)"
    );

    let mut doomed = WorkerProcess::spawn(&world.setup);
    let _survivor = WorkerProcess::spawn(&world.setup);
    // kill one worker while jobs of every product are mid-poll
    wait_for("jobs polling", Duration::from_secs(60), async || {
        let counts = world.store.counts(Some("every")).await.ok()?;
        (counts.polling >= 200).then_some(())
    })
    .await;
    doomed.sigkill();
    world.sim.note_crash();
    let _restarted = WorkerProcess::spawn(&world.setup);

    let counts = world
        .wait_finished("every", Duration::from_secs(180))
        .await;
    assert_eq!(counts.succeeded, 180 * products.len() as u64, "{counts:?}");
    assert_eq!(counts.failed, 20 * products.len() as u64, "{counts:?}");
    for product in &products {
        for login in &logins {
            let job = world.job_of_product(login, *product).await;
            assert_eq!(job.product, *product);
            let path = world.result_path(login, *product);
            if invalid.contains(login) {
                assert_eq!(job.state, JobState::Failed, "{product} {login}");
                assert!(!path.exists(), "no payload for a failed job: {path:?}");
                continue;
            }
            assert_eq!(job.state, JobState::Succeeded, "{product} {login}");
            let payload: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("the result file"))
                    .expect("a JSON payload");
            assert!(
                payload.get(payload_key(*product)).is_some(),
                "{path:?} is {product}'s payload"
            );
        }
    }
    assert_eq!(world.sim.violations(), vec![], "the provider's contract");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_resume_after_sigkill_between_stages() {
    let interval = Duration::from_millis(1_000);
    let mut world = Scenario::start(interval).await;
    world.setup.lease = Duration::from_secs(2);
    let attributes: Product = "attributes".parse().expect("a product");
    // GetAccountsDetail: POST 202, GET …Async 202, 200; then
    // GetAllAttributes: 202, 202, 200
    let logins = world.logins(5, &Script::pending(2));
    world.enqueue_product("stages", attributes, &logins).await;

    let mut worker = WorkerProcess::spawn(&world.setup);
    wait_for(
        "every job past GetAccountsDetail",
        Duration::from_secs(60),
        async || {
            for login in &logins {
                let job = world.store.job_for_login(login, attributes).await.ok()??;
                if job.stage < 1 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    worker.sigkill();
    world.sim.note_crash();
    let detail = flinkq_tests::sim::Product::AccountsDetail;
    let at_kill: Vec<(u32, u32)> = logins
        .iter()
        .map(|login| {
            let stats = world.sim.login_stats(&login.to_string());
            (stats.authorize_calls, stats.product(detail).calls)
        })
        .collect();

    let _restarted = WorkerProcess::spawn(&world.setup);
    let counts = world
        .wait_finished("stages", Duration::from_secs(60))
        .await;
    assert_eq!(counts.succeeded, 5, "{counts:?}");
    for (login, (authorizes, detail_calls)) in logins.iter().zip(at_kill) {
        let stats = world.sim.login_stats(&login.to_string());
        assert_eq!(
            stats.product(detail).calls,
            detail_calls,
            "{login}: GetAccountsDetail called again after the restart"
        );
        assert_eq!(stats.authorize_calls, authorizes, "{login}: the session was kept");
        assert_eq!(authorizes, 1, "{login}");
        assert!(
            stats
                .product(flinkq_tests::sim::Product::Attributes)
                .succeeded_at
                .is_some(),
            "{login}"
        );
        let payload: serde_json::Value = serde_json::from_slice(
            &std::fs::read(world.result_path(login, attributes)).expect("result file"),
        )
        .expect("JSON");
        assert!(payload.get("Card").is_some(), "{login}: the attributes card");
    }
    assert_eq!(world.sim.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_lost_at_the_attributes_stage_starts_again_at_accounts_detail() {
    let interval = Duration::from_millis(300);
    let world = Scenario::start(interval).await;
    let attributes: Product = "attributes".parse().expect("a product");
    // a session answers SESSION_EXPIRED at the third call of a product;
    // three 202s per product (counted across sessions): GetAccountsDetail
    // loses the first session, GetAllAttributes the second, so the job
    // must start again at GetAccountsDetail with each new session
    let script = Script {
        expire_session_after_polls: Some(2),
        ..Script::pending(3)
    };
    let logins = world.logins(3, &script);
    world.enqueue_product("lost", attributes, &logins).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("lost", Duration::from_secs(60)).await;
    assert_eq!(counts.succeeded, 3, "{counts:?}");
    for login in &logins {
        let stats = world.sim.login_stats(&login.to_string());
        assert!(stats.authorize_calls >= 3, "{login}: re-authorized twice");
        let job = world.job_of_product(login, attributes).await;
        assert_eq!(job.sessions, stats.authorize_calls, "{login}");
    }
    // never Attributes before GetAccountsDetail's 200 in the same session
    assert_eq!(world.sim.violations(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_is_refused_with_the_known_ones_listed() {
    let world = Scenario::start(Duration::from_millis(500)).await;
    let login = LoginId::random().to_string();
    let out = world.cli(&["enqueue", "--product", "checking", &login]);
    assert_eq!(out.status.code(), Some(64), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checking"), "{stderr}");
    for product in Product::all() {
        assert!(stderr.contains(product.as_str()), "{stderr}");
    }
    assert_eq!(
        world.store.counts(None).await.expect("counts").total,
        0,
        "nothing enqueued"
    );
}
