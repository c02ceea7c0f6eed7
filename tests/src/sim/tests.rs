use std::time::Duration;

use serde_json::{Value, json};

use super::*;

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn authorize(sim: &SimHandle, login: &str) -> (u16, Value) {
    post(
        &sim.authorize_url(),
        json!({"LoginId": login, "MostRecentCached": true}),
    )
    .await
}

async fn poll(sim: &SimHandle, request_id: &str, login: &str) -> (u16, Value) {
    post(
        &sim.investments_url(),
        json!({"RequestId": request_id, "LoginId": login, "MostRecentCached": true}),
    )
    .await
}

const LOGIN: &str = "5e115eac-1209-4f19-641c-08d6d484e2fe";

#[tokio::test]
async fn pending_then_ready_with_a_payload_naming_the_login() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(
        LOGIN,
        Script {
            pending: 2,
            ..Script::default()
        },
    );
    let (status, body) = authorize(&sim, LOGIN).await;
    assert_eq!(status, 200);
    let request_id = body["RequestId"].as_str().expect("RequestId").to_owned();
    for _ in 0..2 {
        let (status, body) = poll(&sim, &request_id, LOGIN).await;
        assert_eq!(
            (status, body["FlinksCode"].as_str()),
            (202, Some("OPERATION_PENDING"))
        );
    }
    let (status, body) = poll(&sim, &request_id, LOGIN).await;
    assert_eq!(status, 200);
    assert!(body["Investments"].is_array());
    assert!(body.to_string().contains(LOGIN));
    let stats = sim.login_stats(LOGIN);
    assert_eq!((stats.authorize_calls, stats.investments_calls), (1, 3));
    assert!(stats.succeeded_at.is_some());
    assert_eq!(sim.violations(), vec![]);

    // a poll after success is a violation
    poll(&sim, &request_id, LOGIN).await;
    assert_eq!(sim.login_stats(LOGIN).calls_after_success, 1);
    assert!(matches!(
        &sim.violations()[..],
        [Violation::PollAfterSuccess { login, last_crash_after_ms: None, .. }] if login == LOGIN
    ));
}

#[tokio::test]
async fn invalid_logins_unknown_sessions_and_bad_bodies() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(
        LOGIN,
        Script {
            invalid: true,
            ..Script::default()
        },
    );
    let (status, body) = authorize(&sim, LOGIN).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (401, Some("INVALID_LOGIN"))
    );

    let (status, body) = poll(&sim, "not-a-session", LOGIN).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (400, Some("SESSION_NONEXISTENT"))
    );
    assert!(matches!(
        sim.violations()[0],
        Violation::InvestmentsWithoutSession { .. }
    ));

    let (status, body) = post(&sim.authorize_url(), json!({"nope": 1})).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    assert_eq!(sim.totals().rejected, 1);
}

#[tokio::test]
async fn sessions_expire_and_polls_too_close_are_violations() {
    let sim = Simulator::start(SimConfig {
        min_poll_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    sim.set_script(
        LOGIN,
        Script {
            always_pending: true,
            expire_session_after_polls: Some(2),
            ..Script::default()
        },
    );
    let (_, body) = authorize(&sim, LOGIN).await;
    let request_id = body["RequestId"].as_str().expect("RequestId").to_owned();
    assert_eq!(poll(&sim, &request_id, LOGIN).await.0, 202);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(poll(&sim, &request_id, LOGIN).await.0, 202);
    assert_eq!(sim.violations(), vec![]);
    // third poll on this session, too soon and over its poll budget
    let (status, body) = poll(&sim, &request_id, LOGIN).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (401, Some("SESSION_EXPIRED"))
    );
    assert!(matches!(
        sim.violations()[..],
        [Violation::PollTooSoon { .. }]
    ));
    let spacing = sim.login_stats(LOGIN).min_poll_spacing.expect("spacing");
    assert!(spacing < Duration::from_millis(200));
}

#[tokio::test]
async fn the_auth_key_is_required_when_configured() {
    let sim = Simulator::start(SimConfig {
        auth_key: Some("k3y".into()),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    let (status, body) = authorize(&sim, LOGIN).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let response = reqwest::Client::new()
        .post(sim.authorize_url())
        .header("flinks-auth-key", "k3y")
        .json(&json!({"LoginId": LOGIN, "MostRecentCached": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(sim.login_stats(LOGIN).auth_header_seen);
}

#[test]
fn login_derived_scripts_are_stable_and_mixed() {
    let logins: Vec<String> = (0..2_000)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let scripts: Vec<Script> = logins
        .iter()
        .map(|l| DefaultScript::FromLoginId.script_for(l))
        .collect();
    assert_eq!(
        DefaultScript::FromLoginId.script_for(&logins[0]),
        scripts[0]
    );
    let invalid = scripts.iter().filter(|s| s.invalid).count();
    assert!(
        (20..=120).contains(&invalid),
        "about 3% invalid, got {invalid}"
    );
    for pending in 0..4 {
        assert!(scripts.iter().any(|s| s.pending == pending));
    }
}

#[tokio::test]
async fn a_fault_on_call_zero_hits_every_call_and_a_numbered_one_wins() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let pending = Fault::answer(202, Some("OPERATION_PENDING"));
    sim.set_script(
        LOGIN,
        Script {
            faults: vec![
                ScriptedFault::authorize(ScriptedFault::EVERY_CALL, pending),
                ScriptedFault::authorize(3, Fault::answer(503, None)),
            ],
            ..Script::default()
        },
    );
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (status, body) = authorize(&sim, LOGIN).await;
        answers.push((status, body["FlinksCode"].as_str().map(str::to_owned)));
    }
    let pending = (202, Some("OPERATION_PENDING".to_owned()));
    assert_eq!(
        answers,
        vec![
            pending.clone(),
            pending.clone(),
            (503, None),
            pending.clone(),
            pending
        ]
    );
    assert_eq!(sim.login_stats(LOGIN).authorize_calls, 5);
}

async fn raw_poll(sim: &SimHandle, request_id: &str, login: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(sim.investments_url())
        .json(&json!({"RequestId": request_id, "LoginId": login, "MostRecentCached": true}))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn hostile_answers_are_what_they_say() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let faults = [
        Fault::Redirect {
            status: 302,
            location: "http://127.0.0.1:9/elsewhere".into(),
        },
        Fault::HugeBody {
            status: 500,
            megabytes: 3,
        },
        Fault::HugeBody {
            status: 200,
            megabytes: 2,
        },
        Fault::MistypedEnvelope {
            status: 401,
            code: "SESSION_EXPIRED".into(),
        },
        Fault::InvalidUtf8,
        Fault::RetryAfterDate {
            status: 429,
            code: Some("TOO_MANY_REQUESTS".into()),
            after_secs: 7,
        },
        Fault::StalledBody,
    ];
    sim.set_script(
        LOGIN,
        Script {
            faults: faults
                .iter()
                .enumerate()
                .map(|(i, fault)| ScriptedFault::poll(i as u32 + 1, fault.clone()))
                .collect(),
            ..Script::default()
        },
    );
    let (_, body) = authorize(&sim, LOGIN).await;
    let request_id = body["RequestId"].as_str().expect("RequestId").to_owned();

    let redirect = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(
        redirect.headers()["location"].to_str().ok(),
        Some("http://127.0.0.1:9/elsewhere")
    );

    let page = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(page.status(), 500);
    assert!(page.content_length().is_none(), "streamed, no length");
    let page = page.bytes().await.expect("page");
    assert_eq!(page.len(), 3_000_000);
    assert!(page.starts_with(b"<html>"));

    let payload = raw_poll(&sim, &request_id, LOGIN)
        .await
        .bytes()
        .await
        .expect("payload");
    assert_eq!(payload.len(), 2_000_000);
    let payload: Value = serde_json::from_slice(&payload).expect("valid JSON when read whole");
    assert!(payload["Investments"].is_array());

    let mistyped = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(mistyped.status(), 401);
    let mistyped: Value = mistyped.json().await.expect("json");
    assert_eq!(mistyped["FlinksCode"], "SESSION_EXPIRED");
    assert!(mistyped["Message"].is_object());

    let invalid = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(invalid.status(), 200);
    let invalid = invalid.bytes().await.expect("body");
    assert!(std::str::from_utf8(&invalid).is_err());
    assert!(invalid.windows(2).any(|w| w == [0xff, 0xfe]));

    let dated = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(dated.status(), 429);
    let header = |name: &str| {
        let value = dated.headers()[name].to_str().expect("ascii");
        httpdate::parse_http_date(value).expect("an HTTP-date")
    };
    assert_eq!(
        header("retry-after").duration_since(header("date")).ok(),
        Some(Duration::from_secs(7))
    );

    let stalled = raw_poll(&sim, &request_id, LOGIN).await;
    assert_eq!(stalled.status(), 200);
    let mut stalled = stalled;
    let waited = tokio::time::timeout(Duration::from_millis(300), stalled.chunk()).await;
    assert!(waited.is_err(), "no byte of the body ever comes");
}

#[tokio::test]
async fn the_recorder_sees_every_request_and_its_headers() {
    let recorder = RecordingServer::start().await.expect("start");
    let response = reqwest::Client::new()
        .post(format!("{}/any/path", recorder.base_url()))
        .header("flinks-auth-key", "seen")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let seen = recorder.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("POST", "/any/path")
    );
    assert!(
        seen[0]
            .headers
            .contains(&("flinks-auth-key".to_owned(), "seen".to_owned()))
    );
}

// ---- every product ----

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// The product's own request, with the body Flinks documents for it.
async fn first_call(
    sim: &SimHandle,
    product: Product,
    login: &str,
    request_id: &str,
) -> (u16, Value) {
    let url = sim.first_call_url(product, login, request_id);
    match product {
        Product::Investments => {
            post(
                &url,
                json!({"RequestId": request_id, "LoginId": login, "MostRecentCached": true}),
            )
            .await
        }
        Product::AccountsDetail | Product::AccountsSummary => {
            post(&url, json!({"RequestId": request_id})).await
        }
        Product::Statements => {
            post(
                &url,
                json!({"RequestId": request_id, "NumberOfStatements": "MostRecent"}),
            )
            .await
        }
        Product::Attributes => get(&url).await,
    }
}

/// A poll after a 202, the way the provider wants it for `product`.
async fn poll_product(
    sim: &SimHandle,
    product: Product,
    login: &str,
    request_id: &str,
) -> (u16, Value) {
    match product.poll_strategy() {
        PollStrategy::GetAsync => {
            let url = sim
                .async_url(product, request_id)
                .expect("an Async endpoint");
            get(&url).await
        }
        PollStrategy::RepeatFirstCall => first_call(sim, product, login, request_id).await,
    }
}

async fn session(sim: &SimHandle, login: &str) -> String {
    let (status, body) = authorize(sim, login).await;
    assert_eq!(status, 200, "authorize: {body}");
    body["RequestId"].as_str().expect("RequestId").to_owned()
}

/// First call, then polls: `pending` 202s, then the 200, whose body it returns.
async fn drive_to_payload(
    sim: &SimHandle,
    product: Product,
    login: &str,
    request_id: &str,
    pending: u32,
) -> Value {
    let mut answers = vec![first_call(sim, product, login, request_id).await];
    for _ in 0..pending {
        answers.push(poll_product(sim, product, login, request_id).await);
    }
    let (status, payload) = answers.pop().expect("an answer");
    for (status, body) in &answers {
        assert_eq!(
            (*status, body["FlinksCode"].as_str()),
            (202, Some("OPERATION_PENDING")),
            "{product}: {body}"
        );
        assert_eq!(body["RequestId"].as_str(), Some(request_id));
    }
    assert_eq!(status, 200, "{product}: {payload}");
    assert!(
        payload.to_string().contains(login),
        "the payload names the login"
    );
    payload
}

fn keys(body: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn assert_has_keys(body: &Value, wanted: &[&str]) {
    for key in wanted {
        assert!(
            body.get(key).is_some(),
            "{key} missing from {:?}",
            keys(body)
        );
    }
}

#[tokio::test]
async fn accounts_detail_is_posted_once_then_polled_with_get_async() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(2));
    let request_id = session(&sim, LOGIN).await;
    let payload = drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &request_id, 2).await;
    assert_has_keys(
        &payload,
        &[
            "Accounts",
            "Login",
            "Institution",
            "RequestId",
            "HttpStatusCode",
        ],
    );
    assert!(payload["Accounts"][0]["Transactions"].is_array());
    assert_eq!(
        payload,
        product_payload(Product::AccountsDetail, LOGIN, &request_id),
        "deterministic from the login"
    );
    let stats = sim.login_stats(LOGIN);
    let detail = stats.product(Product::AccountsDetail);
    assert_eq!((detail.calls, detail.pending_served), (3, 2));
    assert!(detail.succeeded_at.is_some());
    assert_eq!(
        stats.investments_calls, 0,
        "the flat fields mean Investments"
    );
    assert_eq!(
        (sim.totals().product_calls, sim.totals().investments_calls),
        (3, 0)
    );
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn accounts_summary_is_posted_once_then_polled_with_get_async() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(1));
    let request_id = session(&sim, LOGIN).await;
    let payload = drive_to_payload(&sim, Product::AccountsSummary, LOGIN, &request_id, 1).await;
    assert_has_keys(&payload, &["Accounts", "Login", "Institution", "RequestId"]);
    assert!(payload["Accounts"][0]["Balance"].is_object());
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn a_first_call_answering_200_needs_no_async_poll() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let request_id = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &request_id, 0).await;
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn statements_repeat_the_post_until_ready() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(2));
    let request_id = session(&sim, LOGIN).await;
    let payload = drive_to_payload(&sim, Product::Statements, LOGIN, &request_id, 2).await;
    assert_has_keys(&payload, &["StatementsByAccount", "Login", "RequestId"]);
    let statement = &payload["StatementsByAccount"][0]["Statements"][0];
    assert_has_keys(statement, &["UniqueId", "FileType", "Base64Bytes"]);
    assert_eq!(sim.login_stats(LOGIN).product(Product::Statements).calls, 3);
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn attributes_follow_a_finished_accounts_detail_in_the_same_session() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(1));
    let request_id = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &request_id, 1).await;
    let payload = drive_to_payload(&sim, Product::Attributes, LOGIN, &request_id, 1).await;
    assert_has_keys(&payload, &["Card", "Login", "RequestId"]);
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn investments_keeps_its_url_and_counts_as_a_product() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(1));
    assert_eq!(
        sim.investments_url(),
        format!("{}/v3/{CUSTOMER_ID}/Investments", sim.base_url())
    );
    let request_id = session(&sim, LOGIN).await;
    let payload = drive_to_payload(&sim, Product::Investments, LOGIN, &request_id, 1).await;
    assert!(payload["Investments"].is_array());
    let stats = sim.login_stats(LOGIN);
    let investments = stats.product(Product::Investments);
    assert_eq!(
        (
            stats.investments_calls,
            stats.pending_served,
            stats.succeeded_at
        ),
        (
            investments.calls,
            investments.pending_served,
            investments.succeeded_at
        )
    );
    assert_eq!(stats.investments_times, investments.times);
}

#[tokio::test]
async fn the_pending_count_is_per_login_and_product() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(1));
    let request_id = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::Investments, LOGIN, &request_id, 1).await;
    drive_to_payload(&sim, Product::Statements, LOGIN, &request_id, 1).await;
    drive_to_payload(&sim, Product::AccountsSummary, LOGIN, &request_id, 1).await;
    // a new session continues where the login was: no 202 left
    let again = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &again, 1).await;
    assert_eq!(sim.violations(), vec![]);
}

#[tokio::test]
async fn scripts_apply_to_every_product() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(
        LOGIN,
        Script {
            always_pending: true,
            expire_session_after_polls: Some(2),
            faults: vec![
                ScriptedFault::product(
                    Product::Statements,
                    ScriptedFault::EVERY_CALL,
                    Fault::answer(401, Some("RETRY_LATER")),
                ),
                ScriptedFault::product(Product::AccountsSummary, 1, Fault::Reset),
            ],
            ..Script::default()
        },
    );
    let request_id = session(&sim, LOGIN).await;
    for _ in 0..2 {
        let (status, body) = first_call(&sim, Product::Statements, LOGIN, &request_id).await;
        assert_eq!(
            (status, body["FlinksCode"].as_str()),
            (401, Some("RETRY_LATER"))
        );
    }
    let reset = reqwest::Client::new()
        .post(sim.first_call_url(Product::AccountsSummary, LOGIN, &request_id))
        .json(&json!({"RequestId": request_id}))
        .send()
        .await;
    let cut = match reset {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(cut, "the connection is cut mid-answer");
    // always pending: the first call and its poll answer 202
    let (status, _) = first_call(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert_eq!(status, 202);
    let (status, _) = poll_product(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert_eq!(status, 202);
    let (status, body) = poll_product(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (401, Some("SESSION_EXPIRED")),
        "a third call of one product on one session is over the budget"
    );
    let stats = sim.login_stats(LOGIN);
    assert_eq!(stats.product(Product::Statements).calls, 2);
    assert_eq!(sim.totals().faults, 3);

    sim.set_script("invalid-login", Script::invalid());
    let (status, body) = authorize(&sim, "invalid-login").await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (401, Some("INVALID_LOGIN"))
    );
}

// ---- every product: contract violations ----

#[tokio::test]
async fn get_async_before_the_first_calls_202_is_a_violation() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(
        LOGIN,
        Script {
            pending: 1,
            faults: vec![ScriptedFault::product(
                Product::AccountsSummary,
                1,
                Fault::answer(503, None),
            )],
            ..Script::default()
        },
    );
    let request_id = session(&sim, LOGIN).await;
    // no first call at all in this session
    let (status, body) = poll_product(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    // a first call that failed opens nothing to poll
    assert_eq!(
        first_call(&sim, Product::AccountsSummary, LOGIN, &request_id)
            .await
            .0,
        503
    );
    poll_product(&sim, Product::AccountsSummary, LOGIN, &request_id).await;
    assert_eq!(
        sim.violations(),
        vec![
            Violation::AsyncBeforeFirstCall {
                login: LOGIN.into(),
                product: Product::AccountsDetail
            },
            Violation::AsyncBeforeFirstCall {
                login: LOGIN.into(),
                product: Product::AccountsSummary
            },
        ]
    );
}

#[tokio::test]
async fn product_polls_closer_than_the_interval_are_violations() {
    let sim = Simulator::start(SimConfig {
        min_poll_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    sim.set_script(LOGIN, Script::always_pending());
    let request_id = session(&sim, LOGIN).await;
    first_call(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    // another product of the same session is polled on its own clock
    first_call(&sim, Product::Statements, LOGIN, &request_id).await;
    assert_eq!(sim.violations(), vec![]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    poll_product(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert_eq!(sim.violations(), vec![]);
    poll_product(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    assert!(matches!(
        &sim.violations()[..],
        [Violation::PollTooSoon { login, product: Product::AccountsDetail, gap_ms }]
            if login == LOGIN && *gap_ms < 200
    ));
    let spacing = sim
        .login_stats(LOGIN)
        .product(Product::AccountsDetail)
        .min_poll_spacing;
    assert!(spacing.expect("spacing") < Duration::from_millis(200));
}

#[tokio::test]
async fn a_product_call_after_its_200_in_the_session_is_a_violation() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let request_id = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &request_id, 0).await;
    // another product of the session is no repeat
    drive_to_payload(&sim, Product::AccountsSummary, LOGIN, &request_id, 0).await;
    // a new session may fetch it again (Attributes needs it per session)
    let again = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &again, 0).await;
    assert_eq!(sim.violations(), vec![]);

    poll_product(&sim, Product::AccountsDetail, LOGIN, &again).await;
    assert!(matches!(
        &sim.violations()[..],
        [Violation::PollAfterSuccess { login, product: Product::AccountsDetail, last_crash_after_ms: None, .. }]
            if login == LOGIN
    ));
    assert_eq!(
        sim.login_stats(LOGIN)
            .product(Product::AccountsDetail)
            .calls_after_success,
        1
    );

    // the crash excuse holds for every product
    drive_to_payload(&sim, Product::Statements, LOGIN, &again, 0).await;
    sim.note_crash();
    first_call(&sim, Product::Statements, LOGIN, &again).await;
    assert_eq!(sim.violations().len(), 1);
    assert_eq!(sim.totals().repeats_after_crash, 1);
}

#[tokio::test]
async fn attributes_before_accounts_detail_answered_200_are_violations() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    sim.set_script(LOGIN, Script::pending(1));
    let request_id = session(&sim, LOGIN).await;
    // before any GetAccountsDetail: 202, as Flinks answers while it runs
    let (status, body) = first_call(&sim, Product::Attributes, LOGIN, &request_id).await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (202, Some("OPERATION_PENDING"))
    );
    // GetAccountsDetail still pending
    first_call(&sim, Product::AccountsDetail, LOGIN, &request_id).await;
    first_call(&sim, Product::Attributes, LOGIN, &request_id).await;
    // GetAccountsDetail reached 200, but in another session
    let other = session(&sim, LOGIN).await;
    drive_to_payload(&sim, Product::AccountsDetail, LOGIN, &other, 0).await;
    first_call(&sim, Product::Attributes, LOGIN, &request_id).await;
    let attributes_first = Violation::AttributesBeforeAccountsDetail {
        login: LOGIN.into(),
    };
    assert_eq!(sim.violations(), vec![attributes_first; 3]);
    // in the session where it reached 200, Attributes follow their script
    drive_to_payload(&sim, Product::Attributes, LOGIN, &other, 1).await;
    assert_eq!(sim.violations().len(), 3);
}

#[tokio::test]
async fn product_polls_past_the_timeout_are_violations() {
    let sim = Simulator::start(SimConfig {
        poll_timeout: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .expect("start");
    sim.set_script(LOGIN, Script::always_pending());
    let request_id = session(&sim, LOGIN).await;
    first_call(&sim, Product::Statements, LOGIN, &request_id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first_call(&sim, Product::Statements, LOGIN, &request_id).await;
    assert!(matches!(
        &sim.violations()[..],
        [Violation::PollAfterDeadline { login, product: Product::Statements, late_by_ms }]
            if login == LOGIN && *late_by_ms >= 50
    ));
}

#[tokio::test]
async fn banking_calls_with_an_unknown_request_id_are_violations() {
    let sim = Simulator::start(SimConfig::default()).await.expect("start");
    let (status, body) = first_call(&sim, Product::AccountsDetail, LOGIN, "not-a-session").await;
    assert_eq!(
        (status, body["FlinksCode"].as_str()),
        (400, Some("SESSION_NONEXISTENT"))
    );
    // an Attributes path naming another login than the session's
    let request_id = session(&sim, LOGIN).await;
    first_call(&sim, Product::Attributes, "someone-else", &request_id).await;
    assert_eq!(
        sim.violations(),
        vec![
            Violation::CallWithoutSession {
                product: Product::AccountsDetail,
                request_id: "not-a-session".into()
            },
            Violation::CallWithoutSession {
                product: Product::Attributes,
                request_id
            },
        ]
    );
    let (status, _) = post(
        &sim.first_call_url(Product::Statements, LOGIN, "x"),
        json!({"NoRequestId": 1}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(sim.totals().rejected, 1);
}
