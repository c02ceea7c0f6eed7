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
