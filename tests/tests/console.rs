//! The console (`flinkq serve`, pages under `/`) against a real Redis, a
//! real worker and the simulator, through a cookie-keeping HTTP client:
//! sign-in, sessions, CSRF, the read/full split, the login and dead-letter
//! pages. (The real-browser run is a separate test.)

use std::time::Duration;

use flinkq_shared::{JobState, LoginId, Product};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::serve_process::{
    ConsoleBrowser, ConsolePage, FULL_TOKEN, READ_TOKEN, ServeProcess, serve_mixed,
    wait_batch_finished,
};
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::WorkerProcess;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn assert_strict_csp(page: &ConsolePage) {
    let csp = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline"),
        "CSP {csp:?}"
    );
}

async fn state_of(world: &Scenario, login: &str) -> JobState {
    let login = LoginId::parse(login).expect("loginId");
    world
        .store
        .job_for_login(&login, Product::DEFAULT)
        .await
        .expect("job")
        .expect("a job")
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_no_session_or_a_forged_form_changes_nothing() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let serve = ServeProcess::start(&world, &[]).await;
    let login = world.logins(1, &Script::default())[0].to_string();
    let (status, _) = serve
        .post_json("/api/v1/batches/held/jobs", &json!({ "logins": [login] }))
        .await;
    assert_eq!(status, 200);

    // no session: every page sends to the sign-in form, which has the CSP
    let anonymous = ConsoleBrowser::new(&serve);
    for path in ["/", "/batches", "/dead", &format!("/logins/{login}")] {
        let page = anonymous.get(path).await;
        assert_eq!(
            (page.status, page.location()),
            (303, Some("/signin")),
            "{path}"
        );
    }
    let form = anonymous.get("/signin").await;
    assert_eq!(form.status, 200);
    assert_strict_csp(&form);

    // a bad token: refused, no session
    let page = anonymous.sign_in("not-the-token").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        !page.headers.get_all("set-cookie").iter().any(|c| c
            .to_str()
            .unwrap_or_default()
            .starts_with("flinkq_session=")),
        "{:?}",
        page.headers
    );
    assert_eq!(anonymous.get("/").await.status, 303);

    // login CSRF: the right token posted by a foreign site's form (no
    // sign-in cookie, or a field not made for this cookie) opens no session
    let forger = ConsoleBrowser::new(&serve);
    let page = forger.post("/signin", &[("token", FULL_TOKEN)]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let other_form = ConsoleBrowser::new(&serve).get("/signin").await.csrf();
    forger.get("/signin").await;
    let page = forger
        .post("/signin", &[("token", FULL_TOKEN), ("csrf", &other_form)])
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(forger.get("/").await.location(), Some("/signin"));

    // signed in: a cancel without, or with a wrong, CSRF token is 403 and the job stays queued
    let operator = ConsoleBrowser::signed_in(&serve, FULL_TOKEN).await;
    let page = operator.get(&format!("/logins/{login}")).await;
    assert_eq!(page.status, 200);
    assert_strict_csp(&page);
    assert!(page.body.contains("Cancel this job"), "{}", page.body);
    let csrf = page.csrf();
    let cancel = format!("/logins/{login}/cancel");
    for forged in [
        vec![("product", "investments")],
        vec![("product", "investments"), ("csrf", "0000")],
    ] {
        let answer = operator.post(&cancel, &forged).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_strict_csp(&answer);
    }
    // and a form posted without a session at all
    let answer = anonymous
        .post(&cancel, &[("product", "investments"), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(state_of(&world, &login).await, JobState::Queued);

    // a read-token session sees no cancel button and cannot cancel, even with its own CSRF token
    let reader = ConsoleBrowser::signed_in(&serve, READ_TOKEN).await;
    let page = reader.get(&format!("/logins/{login}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Cancel this job"), "{}", page.body);
    let answer = reader
        .post(
            &cancel,
            &[("product", "investments"), ("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(state_of(&world, &login).await, JobState::Queued);

    // the full session with its CSRF token cancels
    let answer = operator
        .post(&cancel, &[("product", "investments"), ("csrf", &csrf)])
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(state_of(&world, &login).await, JobState::Cancelled);

    // sign-out ends the session
    let answer = operator.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, 303);
    assert_eq!(operator.get("/").await.location(), Some("/signin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_reads_in_plain_words_and_the_dead_page_retries_it() {
    let (world, serve, logins) = serve_mixed(1).await;
    let (ok, bad) = (logins.ok[0].clone(), logins.failed);
    let (status, _) = serve
        .post_json(
            "/api/v1/batches/mixed/jobs",
            &json!({ "logins": [ok, bad] }),
        )
        .await;
    assert_eq!(status, 200);
    let worker = WorkerProcess::spawn(&world.setup);
    wait_batch_finished(&serve, "mixed", WAIT).await;
    // stopped, so the retried job stays queued for the check below
    drop(worker);

    let operator = ConsoleBrowser::signed_in(&serve, FULL_TOKEN).await;
    let reader = ConsoleBrowser::signed_in(&serve, READ_TOKEN).await;

    // the failed login: its FlinksCode in plain words
    let page = operator.get(&format!("/logins/{bad}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("INVALID_LOGIN"), "{}", page.body);
    assert!(
        page.body.contains("the user must reconnect their account"),
        "{}",
        page.body
    );

    // the payload: a link for the full session only, 403 for the read one
    let payload = format!("/logins/{ok}/payload/investments");
    assert!(
        operator
            .get(&format!("/logins/{ok}"))
            .await
            .body
            .contains(&payload)
    );
    let page = reader.get(&format!("/logins/{ok}")).await;
    assert!(!page.body.contains(&payload), "{}", page.body);
    assert_eq!(reader.get(&payload).await.status, 403);
    assert_eq!(operator.get(&payload).await.status, 200);

    // the search box finds the login and the batch
    let found = operator.get(&format!("/search?q={bad}")).await;
    assert_eq!(found.location(), Some(format!("/logins/{bad}").as_str()));
    let found = operator.get("/search?q=mixed").await;
    assert_eq!(found.location(), Some("/batches/mixed"));
    let batch = operator.get("/batches/mixed").await;
    assert!(
        batch.body.contains("data-batch=\"mixed\""),
        "{}",
        batch.body
    );
    // the live updates read the API with the session cookie; it never acts with it
    let api = operator.get("/api/v1/batches/mixed").await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert!(api.body.contains("\"succeeded\":1"), "{}", api.body);
    let acted = operator.post("/api/v1/dead/retry", &[("csrf", "x")]).await;
    assert_eq!(acted.status, 401, "{}", acted.body);

    // the dead page lists it (filtered by its code); its Retry button requeues it
    let dead = operator
        .get("/dead?code=INVALID_LOGIN&product=investments")
        .await;
    assert_eq!(dead.status, 200);
    assert!(dead.body.contains(&bad), "{}", dead.body);
    assert!(!dead.body.contains(&ok), "{}", dead.body);
    let job = LoginId::parse(&bad).expect("loginId");
    let id = world
        .store
        .job_for_login(&job, Product::DEFAULT)
        .await
        .expect("job")
        .expect("a job")
        .id
        .to_string();
    // a read session has no Retry button and is refused
    let read_dead = reader.get("/dead").await;
    assert!(!read_dead.body.contains("Retry"), "{}", read_dead.body);
    let answer = reader
        .post(
            "/dead/action",
            &[
                ("csrf", &read_dead.csrf()),
                ("retry-one", &id),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(state_of(&world, &bad).await, JobState::Failed);

    // its Retry button asks first: the answer is a confirmation naming the login, nothing moves
    let retry_one = [
        ("csrf", dead.csrf()),
        ("code", "INVALID_LOGIN".to_owned()),
        ("product", "investments".to_owned()),
        ("retry-one", id.clone()),
    ];
    let form: Vec<(&str, &str)> = retry_one.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let asked = operator.post("/dead/action", &form).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains(&bad), "{}", asked.body);
    assert!(
        asked.body.contains("name=\"confirm\" value=\"yes\""),
        "{}",
        asked.body
    );
    assert_eq!(state_of(&world, &bad).await, JobState::Failed);
    // the confirmation's own form: the selection and the filter, with confirm=yes
    let answer = operator.confirm(&asked).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(
        answer
            .location()
            .unwrap_or_default()
            .contains("1%20requeued"),
        "{:?}",
        answer.location()
    );
    assert_eq!(state_of(&world, &bad).await, JobState::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_purged_only_once_the_operator_confirms() {
    let (world, serve, logins) = serve_mixed(0).await;
    let (status, _) = serve
        .post_json(
            "/api/v1/batches/doomed/jobs",
            &json!({ "logins": logins.all() }),
        )
        .await;
    assert_eq!(status, 200);
    let worker = WorkerProcess::spawn(&world.setup);
    wait_batch_finished(&serve, "doomed", WAIT).await;
    drop(worker);
    let login = LoginId::parse(&logins.failed).expect("loginId");
    let id = world.job_of_product(&login, Product::DEFAULT).await.id;

    let operator = ConsoleBrowser::signed_in(&serve, FULL_TOKEN).await;
    let dead = operator.get("/dead").await;
    assert!(dead.body.contains("Purge…"), "{}", dead.body);
    // "purge all matching" another FlinksCode, confirmed: this one stays
    let answer = operator
        .post(
            "/dead/action",
            &[
                ("csrf", &dead.csrf()),
                ("code", "SECURITY_QUESTION_TIMEOUT"),
                ("do", "purge-all"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(
        answer.location().unwrap_or_default().contains("0%20purged"),
        "{:?}",
        answer.location()
    );
    assert_eq!(world.store.dead_count().await.expect("dead count"), 1);
    // a row's Purge button asks first: nothing is deleted yet
    let asked = operator
        .post(
            "/dead/action",
            &[("csrf", &dead.csrf()), ("purge-one", &id.to_string())],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains(&logins.failed), "{}", asked.body);
    assert_eq!(world.store.dead_count().await.expect("dead count"), 1);
    // confirmed (the page's own form: do=purge with the selected job)
    let hidden = asked.hidden_fields();
    assert!(
        hidden.contains(&("do".to_owned(), "purge".to_owned())),
        "{hidden:?}"
    );
    let answer = operator.confirm(&asked).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(
        answer.location().unwrap_or_default().contains("1%20purged"),
        "{:?}",
        answer.location()
    );
    assert_eq!(world.store.dead_count().await.expect("dead count"), 0);
    assert!(
        world
            .store
            .job_for_login(&login, Product::DEFAULT)
            .await
            .expect("job")
            .is_none()
    );
}
