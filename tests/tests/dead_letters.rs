//! Dead letters, cancellation and retention through the real CLI and worker.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::JobState;
use flinkq_tests::cli_output::CliOutput;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_retried_and_purged() {
    let world =
        Scenario::with_poll_timeout(Duration::from_millis(200), Duration::from_secs(1)).await;
    let invalid = world.logins(3, &Script::invalid());
    let stuck = world.logins(3, &Script::always_pending());
    world
        .enqueue("night", &[invalid.clone(), stuck.clone()].concat())
        .await;
    let _worker = WorkerProcess::spawn(&world.setup);
    let counts = world.wait_finished("night", Duration::from_secs(30)).await;
    assert_eq!((counts.failed, counts.timed_out), (3, 3));

    let listed: serde_json::Value = world.cli(&["dead", "list", "--json"]).json_ok();
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 6);
    for job in listed {
        let code = job["error"]["code"].as_str().expect("code");
        match job["state"].as_str() {
            Some("failed") => assert_eq!(code, "INVALID_LOGIN"),
            Some("timed_out") => assert_eq!(code, "POLL_TIMEOUT"),
            other => panic!("not a dead state: {other:?}"),
        }
    }
    let human = world.cli(&["dead", "list"]).stdout_ok();
    assert!(human.starts_with("6 dead jobs"), "{human}");

    // the users fixed their logins: retry one, then all
    for login in invalid.iter().chain(&stuck) {
        world.sim.set_script(&login.to_string(), Script::default());
    }
    let one = world
        .cli(&["dead", "retry", &invalid[0].to_string()])
        .stdout_ok();
    assert!(one.starts_with("requeued 1"), "{one}");
    let again = world.cli(&["dead", "retry", &invalid[0].to_string()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "its newest job is no longer dead"
    );
    let all = world.cli(&["dead", "retry", "--all"]).stdout_ok();
    assert!(all.starts_with("requeued 5, skipped 0"), "{all}");
    let counts = world.wait_finished("night", Duration::from_secs(30)).await;
    assert_eq!(
        (counts.succeeded, counts.total),
        (6, 6),
        "retried in place: {counts:?}"
    );
    assert!(
        world
            .cli(&["dead", "list"])
            .stdout_ok()
            .starts_with("0 dead jobs")
    );

    // purge: a fresh dead job goes, the succeeded ones stay
    let doomed = world.logins(1, &Script::invalid());
    world.enqueue("night", &doomed).await;
    world.wait_finished("night", Duration::from_secs(30)).await;
    let purged = world
        .cli(&["dead", "purge", "--older-than", "0s"])
        .stdout_ok();
    assert!(purged.starts_with("purged 1 "), "{purged}");
    let counts = world.store.counts(Some("night")).await.expect("counts");
    assert_eq!((counts.succeeded, counts.failed, counts.total), (6, 0, 6));
    assert!(
        world
            .store
            .job_for_login(&doomed[0], Product::DEFAULT)
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_polling_job_at_its_next_step() {
    let interval = Duration::from_millis(300);
    let world = Scenario::start(interval).await;
    let login = world.logins(1, &Script::always_pending())[0];
    world.enqueue("c", &[login]).await;
    let _worker = WorkerProcess::spawn(&world.setup);
    world
        .wait_polled(&[login], 2, Duration::from_secs(20))
        .await;

    let out = world.cli(&["cancel", &login.to_string()]).stdout_ok();
    assert!(out.starts_with("cancelled job"), "{out}");
    let at_cancel = world.sim.login_stats(&login.to_string()).investments_calls;
    tokio::time::sleep(interval * 4).await;
    let after = world.sim.login_stats(&login.to_string()).investments_calls;
    assert!(
        after <= at_cancel + 1,
        "polled {} times after the cancel",
        after - at_cancel
    );
    let job = world
        .store
        .job_for_login(&login, Product::DEFAULT)
        .await
        .expect("read")
        .expect("job");
    assert_eq!(job.state, JobState::Cancelled);
    let counts = world.store.counts(Some("c")).await.expect("counts");
    assert_eq!((counts.cancelled, counts.polling), (1, 0));

    let again = world.cli(&["cancel", &login.to_string()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no unfinished job"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_redis_flat_over_nightly_runs() {
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    // longer than a night takes even on a loaded machine, so no job of the
    // night is purged before the whole batch is counted
    world.setup.extra_env = vec![("FLINKQ_RETENTION".into(), "3s".into())];
    world.setup.lease = Duration::from_millis(400);
    let logins = world.logins(200, &Script::pending(1));
    let _worker = WorkerProcess::spawn(&world.setup);
    let mut conn = world.store.connection();
    let mut sizes = Vec::new();
    for night in 0..3 {
        world.enqueue("nightly", &logins).await;
        let counts = world
            .wait_finished("nightly", Duration::from_secs(30))
            .await;
        assert_eq!(counts.succeeded, 200, "night {night}");
        // retention deletes every finished job and the emptied batch
        wait_for(
            "retention to purge the night's jobs",
            Duration::from_secs(10),
            async || {
                let counts = world.store.counts(None).await.ok()?;
                (counts.total == 0).then_some(())
            },
        )
        .await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        // each login keeps one result pointer (its own TTL,
        // FLINKQ_RESULT_TTL): bounded by the logins, not by the nights
        let pointers = keys.iter().filter(|k| k.contains(":result:")).count();
        assert_eq!(pointers, 200, "night {night}");
        sizes.push(keys.len() - pointers);
    }
    assert_eq!(sizes[0], sizes[2], "other keys after each night: {sizes:?}");
    assert!(sizes[2] < 20, "only bookkeeping keys remain: {sizes:?}");
}
