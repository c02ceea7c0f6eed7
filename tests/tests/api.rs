//! The HTTP API (`flinkq serve`) against a real Redis, a real worker and
//! the simulator: every endpoint, every status code, the token rules, the
//! live event stream.

use std::time::Duration;

use flinkq_shared::LoginId;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::serve_process::{
    FULL_TOKEN, READ_TOKEN, ServeProcess, schemathesis, send_json, serve_mixed, wait_batch_finished,
};
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, flinkq_command};
use reqwest::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn ids(logins: &[LoginId]) -> Vec<String> {
    logins.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invalid_login_enqueues_nothing_and_a_resent_enqueue_enqueues_nothing_twice() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let serve = ServeProcess::start(&world, &[("FLINKQ_SERVE_MAX_BODY", "4KiB")]).await;
    let good = ids(&world.logins(3, &Script::default()));

    // two bad entries among good ones: 422 naming each index, nothing enqueued
    let mut with_bad = good.clone();
    with_bad.insert(1, "not-a-uuid".into());
    with_bad.push(String::new());
    let (status, body) = serve
        .post_json(
            "/api/v1/batches/night/jobs",
            &json!({ "logins": with_bad, "product": "investments" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let at: Vec<&str> = body["invalid"]
        .as_array()
        .expect("invalid list")
        .iter()
        .map(|item| item["at"].as_str().expect("at"))
        .collect();
    assert_eq!(at, ["logins[1]", "logins[4]"], "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("nothing was done"),
        "{body}"
    );
    let (status, _) = serve.get_json("/api/v1/batches/night").await;
    assert_eq!(status, 404, "nothing may have been enqueued");
    assert_eq!(world.store.counts(None).await.expect("counts").total, 0);

    // valid: enqueued once; sent again (with a duplicate): nothing twice
    let request = json!({ "logins": good, "priority": "high" });
    let (status, body) = serve
        .post_json("/api/v1/batches/night/jobs", &request)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "enqueued": 3, "already_active": 0, "already_in_batch": 0 })
    );
    let mut again = good.clone();
    again.push(good[0].clone());
    let (status, body) = serve
        .post_json("/api/v1/batches/night/jobs", &json!({ "logins": again }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "enqueued": 0, "already_active": 0, "already_in_batch": 3 })
    );
    // the same logins in another batch: already active there
    let (_, body) = serve
        .post_json("/api/v1/batches/other/jobs", &json!({ "logins": good }))
        .await;
    assert_eq!(body["already_active"], 3, "{body}");

    let (status, body) = serve.get_json("/api/v1/batches/night").await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["batch"].as_str(), body["counts"]["total"].as_u64()),
        (Some("night"), Some(3))
    );
    assert_eq!(body["counts"]["queued"], 3, "{body}");
    let (status, body) = serve.get_json("/api/v1/batches?limit=10").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["batch"].as_str().expect("name"))
        .collect();
    // "other" enqueued nothing (every login already active): no batch
    assert_eq!(names, ["night"], "{body}");

    // the other refusals, each a JSON body
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            serve
                .request(Method::POST, "/api/v1/batches/night/jobs", Some(FULL_TOKEN))
                .json(&json!({ "logins": good, "product": "checking" })),
            422,
            "accounts-detail",
        ),
        (
            serve
                .request(Method::POST, "/api/v1/batches/a%20b/jobs", Some(FULL_TOKEN))
                .json(&json!({ "logins": good })),
            422,
            "batch name",
        ),
        (
            serve
                .request(Method::POST, "/api/v1/batches/night/jobs", Some(FULL_TOKEN))
                .json(&json!({ "logins": good, "priority": "urgent" })),
            422,
            "priority",
        ),
        (
            serve
                .request(Method::POST, "/api/v1/batches/night/jobs", Some(FULL_TOKEN))
                .header("content-type", "application/json")
                .body("{\"logins\": ["),
            400,
            "JSON",
        ),
        (
            serve
                .request(Method::POST, "/api/v1/batches/night/jobs", Some(FULL_TOKEN))
                .header("content-type", "text/plain")
                .body(good[0].clone()),
            415,
            "application/json",
        ),
        (
            serve
                .request(Method::POST, "/api/v1/batches/night/jobs", Some(FULL_TOKEN))
                .json(&json!({ "logins": vec![good[0].clone(); 200] })),
            413,
            "FLINKQ_SERVE_MAX_BODY",
        ),
        (
            serve.request(Method::DELETE, "/api/v1/batches/night", Some(FULL_TOKEN)),
            405,
            "Allow",
        ),
        (
            serve.request(Method::GET, "/api/v1/nothing-here", Some(FULL_TOKEN)),
            404,
            "/api/v1",
        ),
        (
            serve.request(
                Method::GET,
                "/api/v1/batches/never-enqueued",
                Some(FULL_TOKEN),
            ),
            404,
            "never-enqueued",
        ),
        (
            serve.request(Method::GET, "/api/v1/batches?limit=0", Some(FULL_TOKEN)),
            400,
            "limit",
        ),
        (
            serve.request(
                Method::GET,
                "/api/v1/logins/not-a-uuid/jobs",
                Some(FULL_TOKEN),
            ),
            422,
            "UUID",
        ),
    ];
    for (request, want, mentions) in cases {
        let (status, body) = send_json(request).await;
        assert_eq!(status, want, "{body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{want}: no JSON error: {body}"));
        assert!(error.contains(mentions), "{want}: {error}");
    }
    let (_, body) = serve
        .post_json(
            "/api/v1/batches/night/jobs",
            &json!({ "logins": good, "product": "checking" }),
        )
        .await;
    assert_eq!(
        body["known_products"].as_array().map(Vec::len),
        Some(flinkq_shared::Product::all().count()),
        "an unknown product lists the known ones: {body}"
    );
    assert_eq!(
        world
            .store
            .counts(Some("night"))
            .await
            .expect("counts")
            .total,
        3,
        "no refused request enqueued anything"
    );

    // health and the document need no token
    let (status, body) = send_json(serve.request(Method::GET, "/api/v1/health", None)).await;
    assert_eq!((status, body["redis"].as_str()), (200, Some("ok")));
    let (status, document) =
        send_json(serve.request(Method::GET, "/api/v1/openapi.json", None)).await;
    assert_eq!(status, 200);
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.")
    );
    for path in [
        "/api/v1/batches/{batch}/jobs",
        "/api/v1/logins/{loginId}/jobs",
        "/api/v1/logins/{loginId}/results/{product}",
        "/api/v1/dead/retry",
        "/api/v1/events",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} undocumented");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_reads_but_never_acts_nor_sees_a_payload_and_no_token_gets_nothing() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let serve = ServeProcess::start(&world, &[]).await;
    let login = world.logins(1, &Script::default())[0].to_string();
    let enqueue = "/api/v1/batches/b/jobs".to_owned();
    let body = json!({ "logins": [login] });

    for token in [None, Some("wrong-token"), Some("")] {
        let response = serve
            .request(Method::GET, "/api/v1/batches", token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 401, "{token:?}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let (status, _) = send_json(serve.request(Method::POST, &enqueue, token).json(&body)).await;
        assert_eq!(status, 401);
    }
    assert_eq!(world.store.counts(None).await.expect("counts").total, 0);

    // the read token: reads yes; actions and payloads 403, nothing done
    for path in [
        "/api/v1/batches".to_owned(),
        format!("/api/v1/logins/{login}/jobs"),
    ] {
        let (status, body) = send_json(serve.request(Method::GET, &path, Some(READ_TOKEN))).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let actions = [
        (Method::POST, enqueue.clone(), Some(body.clone())),
        (
            Method::POST,
            "/api/v1/dead/retry".into(),
            Some(json!({ "all": true })),
        ),
        (
            Method::POST,
            "/api/v1/dead/purge".into(),
            Some(json!({ "older_than": "0s" })),
        ),
        (Method::POST, format!("/api/v1/logins/{login}/cancel"), None),
        (
            Method::GET,
            format!("/api/v1/logins/{login}/results/investments"),
            None,
        ),
    ];
    for (method, path, json_body) in &actions {
        let mut request = serve.request(method.clone(), path, Some(READ_TOKEN));
        if let Some(json_body) = json_body {
            request = request.json(json_body);
        }
        let (status, answer) = send_json(request).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .expect("error")
                .contains("FLINKQ_API_TOKEN"),
            "{answer}"
        );
    }
    assert_eq!(world.store.counts(None).await.expect("counts").total, 0);

    // the full token acts; every response carries the strict headers
    let response = serve
        .request(Method::POST, &enqueue, Some(FULL_TOKEN))
        .json(&body)
        .send()
        .await
        .expect("enqueue");
    assert_eq!(response.status().as_u16(), 200);
    for response in [
        response,
        serve
            .request(Method::GET, "/api/v1/nowhere", None)
            .send()
            .await
            .expect("404"),
    ] {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-security-policy").contains("default-src 'none'"));
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let log = serve.process.stderr();
    assert!(
        !log.contains(FULL_TOKEN) && !log.contains(READ_TOKEN),
        "a token reached the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_public_address_without_a_token_and_reads_tokens_from_files() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let refused = flinkq_command(&world.redis.url(), &world.setup.namespace)
        .args(["serve", "--addr", "0.0.0.0:0"])
        .env_remove("FLINKQ_API_TOKEN")
        .env_remove("FLINKQ_API_READ_TOKEN")
        .output()
        .expect("run flinkq serve");
    assert_eq!(refused.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("FLINKQ_API_TOKEN"), "{stderr}");

    let file = world.work.path().join("token");
    std::fs::write(&file, "token-from-a-file\n").expect("token file");
    let serve = ServeProcess::start_with(
        &world,
        &[("FLINKQ_API_TOKEN_FILE", file.to_str().expect("path"))],
    )
    .await;
    let (status, _) =
        send_json(serve.request(Method::GET, "/api/v1/batches", Some("token-from-a-file"))).await;
    assert_eq!(status, 200, "the file's token, its newline trimmed");
    let (status, _) = send_json(serve.request(Method::GET, "/api/v1/batches", None)).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_hears_its_batch_complete_over_sse_and_resumes_after_its_last_event_id() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let serve = ServeProcess::start(&world, &[]).await;
    let logins = ids(&world.logins(2, &Script::pending(1)));

    // subscribe first, then enqueue: no completion can be missed
    let mut events = serve.events("?batch=pipeline", None).await;
    let (status, body) = serve
        .post_json(
            "/api/v1/batches/pipeline/jobs",
            &json!({ "logins": logins }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let _worker = WorkerProcess::spawn(&world.setup);
    let seen = events
        .until("batch_completed", WAIT, |data| data["batch"] == "pipeline")
        .await;
    let finished: Vec<_> = seen
        .iter()
        .filter(|e| e.event.as_deref() == Some("job_finished"))
        .collect();
    assert_eq!(finished.len(), 2, "{seen:?}");
    for event in &finished {
        let data = event.json();
        assert_eq!(
            (data["batch"].as_str(), data["state"].as_str()),
            (Some("pipeline"), Some("succeeded"))
        );
        assert!(logins.contains(&data["login"].as_str().expect("login").to_owned()));
    }
    let completed = seen.last().expect("completion").json();
    assert_eq!(completed["counts"]["succeeded"], 2, "{completed}");

    // reconnect after the first finish: the second and the completion again
    let first_id = finished[0].id.clone().expect("event id");
    let mut resumed = serve.events("?batch=pipeline", Some(&first_id)).await;
    let again = resumed
        .until("batch_completed", WAIT, |data| data["batch"] == "pipeline")
        .await;
    let again_finished: Vec<_> = again
        .iter()
        .filter(|e| e.event.as_deref() == Some("job_finished"))
        .map(|e| e.json()["login"].clone())
        .collect();
    assert_eq!(
        again_finished,
        [finished[1].json()["login"].clone()],
        "{again:?}"
    );

    // a client that comes after the completion hears it at once
    let mut late = serve.events("?batch=pipeline", None).await;
    let event = late.next(Duration::from_secs(10)).await;
    assert_eq!(event.event.as_deref(), Some("batch_completed"), "{event:?}");

    // a Last-Event-ID that is not ours is the client's error; then SIGTERM
    // stops the server although a stream is open
    let (status, body) = send_json(
        serve
            .request(Method::GET, "/api/v1/events", Some(FULL_TOKEN))
            .header("Last-Event-ID", "$,$"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let mut serve = serve;
    let status = serve.process.sigterm(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "flinkq serve did not stop cleanly on SIGTERM with an open event stream: {status:?}\n{}",
        serve.process.stderr()
    );
    drop(late);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_every_answer_of_the_live_server() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let serve = ServeProcess::start(&world, &[]).await;
    let command = schemathesis();
    let base = serve.url("");
    let auth = format!("Authorization: Bearer {FULL_TOKEN}");
    let dir = world.work.path().to_owned();
    // generated requests of every operation but the endless event stream,
    // every check (status codes, content types, headers, response schemas,
    // schema-valid requests accepted, invalid ones refused, auth enforced);
    // a fixed seed so a failure reproduces
    let output = tokio::task::spawn_blocking({
        let command = command.clone();
        move || {
            std::process::Command::new(&command)
                .current_dir(&dir)
                .args(["run", &format!("{base}/api/v1/openapi.json"), "--url", &base])
                .args(["--checks", "all", "--max-examples", "25", "--seed", "20261125"])
                .args(["--exclude-path", "/api/v1/events", "--request-timeout", "10"])
                .args(["--generation-database", "none", "--no-color"])
                .args(["-H", &auth])
                .output()
        }
    })
    .await
    .expect("schemathesis thread")
    .unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}): scripts/test installs it from PyPI into ~/.cache/flinkq/schemathesis (or set FLINKQ_SCHEMATHESIS)",
            command.display()
        )
    });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found answers the OpenAPI document does not describe:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_is_found_with_its_flinks_code_retried_and_only_successes_have_payloads() {
    let (world, serve, logins) = serve_mixed(1).await;
    let (ok, bad) = (logins.ok[0].clone(), logins.failed);
    let (status, _) = serve
        .post_json(
            "/api/v1/batches/mixed/jobs",
            &json!({ "logins": [ok, bad] }),
        )
        .await;
    assert_eq!(status, 200);
    let _worker = WorkerProcess::spawn(&world.setup);
    let batch = wait_batch_finished(&serve, "mixed", WAIT).await;
    assert_eq!(
        (
            batch["counts"]["succeeded"].as_u64(),
            batch["counts"]["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // the failed login: its job, FlinksCode and HTTP status, no payload or token
    let (status, body) = serve.get_json(&format!("/api/v1/logins/{bad}/jobs")).await;
    assert_eq!(status, 200);
    let job = &body["jobs"][0];
    assert_eq!(
        (
            job["state"].as_str(),
            job["product"].as_str(),
            job["batch"].as_str()
        ),
        (Some("failed"), Some("investments"), Some("mixed"))
    );
    assert_eq!(job["error"]["code"], "INVALID_LOGIN", "{body}");
    assert!(job["error"]["http_status"].as_u64().is_some(), "{body}");
    assert!(
        job["steps"]["auths"].as_u64().is_some() && job["steps"]["created_ms"].as_u64().is_some()
    );
    let text = body.to_string();
    assert!(
        !text.contains("token") && !text.contains("payload"),
        "{text}"
    );
    let (status, _) = serve
        .get_json(&format!("/api/v1/logins/{bad}/results/investments"))
        .await;
    assert_eq!(status, 404, "a failed job has no payload");
    let (status, _) = serve
        .get_json(&format!("/api/v1/logins/{ok}/results/nope"))
        .await;
    assert_eq!(status, 422);

    // the succeeded one: the payload as Flinks sent it
    let response = serve
        .request(
            Method::GET,
            &format!("/api/v1/logins/{ok}/results/investments"),
            Some(FULL_TOKEN),
        )
        .send()
        .await
        .expect("payload");
    assert_eq!(response.status().as_u16(), 200);
    let payload: serde_json::Value = response.json().await.expect("payload is JSON");
    assert!(payload.is_object(), "{payload}");

    // retry: refused for an invalid loginId (nothing done), then done
    let (status, body) = serve
        .post_json("/api/v1/dead/retry", &json!({ "logins": [bad, "x"] }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["invalid"][0]["at"], "logins[1]");
    let (status, _) = serve
        .post_json(
            "/api/v1/dead/retry",
            &json!({ "logins": [bad], "all": true }),
        )
        .await;
    assert_eq!(status, 422, "logins and all are exclusive");
    world.sim.set_script(&bad, Script::default());
    let (status, body) = serve
        .post_json("/api/v1/dead/retry", &json!({ "logins": [bad, ok] }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "requeued": 1, "skipped": 0, "not_dead": 1 }));
    let batch = wait_batch_finished(&serve, "mixed", WAIT).await;
    assert_eq!(batch["counts"]["succeeded"], 2, "{batch}");
    let (status, body) = serve
        .post_json("/api/v1/dead/retry", &json!({ "all": true }))
        .await;
    assert_eq!((status, body["requeued"].as_u64()), (200, Some(0)));

    // purge: one that times out, then purged
    let stuck = world.logins(1, &Script::always_pending())[0].to_string();
    serve
        .post_json("/api/v1/batches/stuck/jobs", &json!({ "logins": [stuck] }))
        .await;
    wait_batch_finished(&serve, "stuck", WAIT).await;
    let (status, body) = serve
        .post_json("/api/v1/dead/purge", &json!({ "older_than": "later" }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = serve
        .post_json(
            "/api/v1/dead/purge",
            &json!({ "older_than": "0s", "product": "investments" }),
        )
        .await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(1)), "{body}");

    // cancel: an unfinished job, by ?product= or body; then nothing left
    let pending = world.logins(1, &Script::always_pending())[0].to_string();
    serve
        .post_json(
            "/api/v1/batches/cancel-me/jobs",
            &json!({ "logins": [pending] }),
        )
        .await;
    let (status, body) = send_json(serve.request(
        Method::POST,
        &format!("/api/v1/logins/{pending}/cancel?product=investments"),
        Some(FULL_TOKEN),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["cancelled"].as_str().is_some(), "{body}");
    let (status, body) = serve
        .post_json(
            &format!("/api/v1/logins/{pending}/cancel"),
            &json!({ "product": "investments" }),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = serve
        .post_json(
            &format!("/api/v1/logins/{pending}/cancel"),
            &json!({ "product": "checking" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, body) = serve
        .get_json(&format!("/api/v1/logins/{pending}/jobs"))
        .await;
    assert_eq!(body["jobs"][0]["state"], "cancelled", "{body}");
}
