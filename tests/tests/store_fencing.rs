//! The Redis store's guarantees, against a real redis-server: dedupe,
//! fencing, lease expiry, deadlines, bounded claims.

use flinkq_shared::Product;
use std::time::Duration;

use flinkq_shared::store::{CommitOutcome, Store};
use flinkq_shared::{
    JobSnapshot, JobState, LoginId, Outcome, Policy, Tick, Transition, transition,
};
use flinkq_tests::fixtures::invalid_login;
use flinkq_tests::redis_harness::RedisServer;

/// The transition an Authorize 200 with session `request_id` causes at `now_ms`.
fn authorized(job: &JobSnapshot, request_id: &str, now_ms: u64, policy: &Policy) -> Transition {
    let outcome = Outcome::Authorized {
        request_id: request_id.into(),
    };
    transition(
        job,
        outcome,
        Tick {
            now_ms,
            jitter: 0.0,
        },
        policy,
    )
}

/// The login's newest job of the default product; it must have one.
async fn newest(store: &Store, login: &LoginId) -> JobSnapshot {
    store
        .job_for_login(login, Product::DEFAULT)
        .await
        .expect("read the login's newest job")
        .unwrap_or_else(|| panic!("login {login} has no job"))
}

#[tokio::test]
async fn enqueueing_the_same_login_twice_while_active_creates_one_job() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let login = LoginId::random();

    let first = store.enqueue("b1", &[login]).await.expect("enqueue");
    let second = store
        .enqueue("b2", &[login, login])
        .await
        .expect("enqueue again");
    assert_eq!((first.enqueued, first.already_active), (1, 0));
    assert_eq!((second.enqueued, second.already_active), (0, 2));
    let counts = store.counts(None).await.expect("counts");
    assert_eq!((counts.queued, counts.total), (1, 1));
    let job = newest(&store, &login).await;
    assert_eq!(job.batch, "b1");

    // once finished, the login can be enqueued again
    let claimed = store
        .claim(10, Duration::from_secs(10))
        .await
        .expect("claim");
    let job = &claimed.jobs[0];
    let failed = invalid_login(job, claimed.now_ms);
    assert_eq!(
        job.apply(&failed).await.expect("commit"),
        CommitOutcome::Applied
    );
    let third = store
        .enqueue("b3", &[login])
        .await
        .expect("enqueue after finish");
    assert_eq!(third.enqueued, 1);
    let third_job = newest(&store, &login).await;
    assert_eq!(
        (third_job.batch.as_str(), third_job.state),
        ("b3", JobState::Queued)
    );
}

#[tokio::test]
async fn a_login_listed_twice_in_one_enqueue_creates_one_job() {
    // enqueue reads every pointer of a call before it writes any: the second
    // mention must still see the job the first one created
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let (login, other) = (LoginId::random(), LoginId::random());

    let report = store
        .enqueue("b1", &[login, other, login])
        .await
        .expect("enqueue");
    assert_eq!(
        (
            report.enqueued,
            report.already_active,
            report.already_in_batch
        ),
        (2, 1, 0)
    );
    let counts = store.counts(None).await.expect("counts");
    assert_eq!((counts.queued, counts.total), (2, 2));
    let claimed = store
        .claim(10, Duration::from_secs(10))
        .await
        .expect("claim");
    let mut logins: Vec<String> = claimed
        .jobs
        .iter()
        .map(|job| job.login.to_string())
        .collect();
    logins.sort();
    let mut expected = vec![login.to_string(), other.to_string()];
    expected.sort();
    assert_eq!(logins, expected, "one job per login, none twice");
}

#[tokio::test]
async fn an_active_pointer_whose_job_is_gone_is_taken_over_by_the_next_enqueue() {
    // a job hash evicted or deleted by hand leaves its login's `active`
    // pointer naming nothing: the login must not be skipped forever
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let login = LoginId::random();
    store.enqueue("b1", &[login]).await.expect("enqueue");
    let lost = newest(&store, &login).await;
    let mut conn = store.connection();
    let _: i64 = redis::AsyncCommands::del(&mut conn, store.keys().job(lost.id))
        .await
        .expect("DEL the job hash");

    let again = store.enqueue("b2", &[login]).await.expect("enqueue again");
    assert_eq!((again.enqueued, again.already_active), (1, 0));
    let taken_over = newest(&store, &login).await;
    assert_ne!(taken_over.id, lost.id);
    assert_eq!(
        (taken_over.batch.as_str(), taken_over.state),
        ("b2", JobState::Queued)
    );
    let active: Option<String> =
        redis::AsyncCommands::get(&mut conn, store.keys().active(&login, Product::DEFAULT))
            .await
            .expect("GET active");
    assert_eq!(active, Some(taken_over.id.to_string()));
}

#[tokio::test]
async fn stale_worker_is_fenced_after_lease_expiry() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    store
        .enqueue("b", &[LoginId::random()])
        .await
        .expect("enqueue");

    let lease = Duration::from_millis(200);
    let stale = store.claim(1, lease).await.expect("claim").jobs.remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the stale holder cannot renew an expired-and-reaped lease
    let reaped = store.reap(100).await.expect("reap");
    assert_eq!(reaped.requeued, 1);
    assert!(!stale.extend(lease).await.expect("extend"));

    let fresh_claim = store
        .claim(1, Duration::from_secs(10))
        .await
        .expect("reclaim");
    let fresh = &fresh_claim.jobs[0];
    assert_eq!(fresh.id, stale.id);
    assert!(stale.token.is_some() && fresh.token.is_some());
    assert_ne!(
        fresh.token, stale.token,
        "every claim draws a new fencing token"
    );

    let now = fresh_claim.now_ms;
    let stale_change = authorized(&stale, "stale-session", now, &Policy::default());
    assert_eq!(
        stale.apply(&stale_change).await.expect("commit"),
        CommitOutcome::Fenced
    );
    let unchanged = store.job(stale.id).await.expect("read").expect("job");
    assert_eq!(unchanged.state, JobState::Queued);
    assert_eq!(unchanged.request_id, None);
    assert_eq!(unchanged.token, fresh.token);

    let fresh_change = authorized(fresh, "fresh-session", now, &Policy::default());
    assert_eq!(
        fresh.apply(&fresh_change).await.expect("commit"),
        CommitOutcome::Applied
    );
    let changed = store.job(fresh.id).await.expect("read").expect("job");
    assert_eq!(changed.state, JobState::Polling);
    assert_eq!(changed.request_id.as_deref(), Some("fresh-session"));
    // and a commit is applied once: the same token cannot commit twice
    assert_eq!(
        fresh.apply(&fresh_change).await.expect("commit"),
        CommitOutcome::Fenced
    );
}

#[tokio::test]
async fn stale_worker_is_fenced_even_before_the_job_is_claimed_again() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    store
        .enqueue("b", &[LoginId::random()])
        .await
        .expect("enqueue");
    let claimed = store
        .claim(1, Duration::from_millis(100))
        .await
        .expect("claim");
    let stale = &claimed.jobs[0];
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.reap(100).await.expect("reap");
    let t = authorized(stale, "late", claimed.now_ms, &Policy::default());
    assert_eq!(
        stale.apply(&t).await.expect("commit"),
        CommitOutcome::Fenced
    );
}

#[tokio::test]
async fn claims_are_bounded_even_with_a_large_due_backlog() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let logins: Vec<_> = (0..20_000).map(|_| LoginId::random()).collect();
    let report = store.enqueue("big", &logins).await.expect("enqueue 20k");
    assert_eq!(report.enqueued, 20_000);
    let claimed = store
        .claim(100, Duration::from_secs(10))
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 100);
    assert!(claimed.next_due_ms.is_some_and(|due| due <= claimed.now_ms));
    assert_eq!(
        store.counts(Some("big")).await.expect("counts").total,
        20_000
    );
}

#[tokio::test]
async fn reap_times_out_an_unclaimed_job_past_its_deadline() {
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let login = LoginId::random();
    store.enqueue("b", &[login]).await.expect("enqueue");
    let claimed = store
        .claim(1, Duration::from_secs(10))
        .await
        .expect("claim");
    let job = &claimed.jobs[0];
    let policy = Policy {
        poll_timeout: Duration::from_millis(150),
        ..Policy::default()
    };
    let t = authorized(job, "s", claimed.now_ms, &policy);
    // park the job in the future, as if its worker died before polling
    let parked = Transition {
        due_ms: Some(claimed.now_ms + 60_000),
        ..t
    };
    assert_eq!(
        job.apply(&parked).await.expect("commit"),
        CommitOutcome::Applied
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let reaped = store.reap(100).await.expect("reap");
    assert_eq!(reaped.timed_out, 1);
    let done = newest(&store, &login).await;
    assert_eq!(done.state, JobState::TimedOut);
    assert_eq!(done.error.map(|e| e.code), Some("POLL_TIMEOUT".to_owned()));
    let counts = store.counts(None).await.expect("counts");
    assert_eq!((counts.polling, counts.timed_out), (0, 1));
    // the login is free again (for a new run: the same batch would skip it)
    assert_eq!(
        store
            .enqueue("b-again", &[login])
            .await
            .expect("enqueue")
            .enqueued,
        1
    );
}

#[tokio::test]
async fn a_field_absent_from_the_hash_reads_as_absent_after_the_claim_packs_it() {
    // claim.lua packs each job's values into one string: a field the hash
    // lacks must come back unset, not as an empty or shifted value, and a
    // value of any length must come back whole
    let redis = RedisServer::start().expect("redis-server");
    let store = redis.store().await;
    let login = LoginId::random();
    store.enqueue("b", &[login]).await.expect("enqueue");
    let claimed = store
        .claim_to_run(
            1,
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_millis(500),
        )
        .await
        .expect("claim");
    let job = &claimed.jobs[0];
    assert_eq!((job.login, job.state), (login, JobState::Queued));
    assert_eq!(job.batch, "b");
    assert_eq!(job.claims, 1);
    assert!(job.token.is_some(), "the claim's token");
    assert_eq!(
        job.started_ms,
        Some(claimed.now_ms),
        "started by this claim"
    );
    assert!(job.due_ms.is_some(), "the due time the claim adds");
    assert_eq!(job.begun(), Some(Duration::ZERO), "an authorize begins now");
    for (name, absent) in [
        ("request_id", job.request_id.is_none()),
        ("deadline", job.deadline_ms.is_none()),
        ("finished", job.finished_ms.is_none()),
        ("err_code", job.error.is_none()),
        ("last", job.last.is_none()),
    ] {
        assert!(absent, "{name} is not in the hash: {job:?}");
    }
    let untouched = store
        .claim_bounded(1, Duration::from_secs(10), Duration::from_secs(60))
        .await
        .expect("claim nothing");
    assert!(untouched.jobs.is_empty());

    // the same job, its hash holding long values (str8, str16, str32 when
    // packed) and an empty one, claimed again without beginning
    let mut conn = store.connection();
    let request_id = "r".repeat(40);
    let message = "m".repeat(70_000);
    let _: () = redis::cmd("HSET")
        .arg(store.keys().job(job.id))
        .arg("request_id")
        .arg(&request_id)
        .arg("err_code")
        .arg("E".repeat(300))
        .arg("err_msg")
        .arg(&message)
        .arg("last")
        .arg("")
        .query_async(&mut conn)
        .await
        .expect("hset");
    assert!(job.release().await.expect("release"), "released");
    let again = store
        .claim_bounded(1, Duration::from_secs(10), Duration::from_secs(60))
        .await
        .expect("claim again");
    let job = &again.jobs[0];
    assert_eq!(job.request_id.as_deref(), Some(request_id.as_str()));
    let error = job.error.as_ref().expect("the stored error");
    assert_eq!(error.code, "E".repeat(300));
    assert_eq!(error.message, message);
    assert_eq!(job.last, None, "an empty value reads as unset");
    assert_eq!(job.begun(), None, "a claim that did not begin the step");
    assert_eq!(
        job.started_ms,
        Some(claimed.now_ms),
        "kept from the first claim"
    );
}
