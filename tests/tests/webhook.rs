//! The batch webhook: every completion is POSTed once to FLINKQ_BATCH_WEBHOOK
//! even with two workers configured, a refused POST is retried with the same
//! Idempotency-Key, the body carries the batch's exact counts, and every
//! POST is signed with the configured secret (HMAC-SHA256 of the body).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

/// What the receiver saw: (Idempotency-Key, body, status it answered).
type Seen = Arc<Mutex<Vec<(String, serde_json::Value, u16)>>>;

const SECRET: &str = "whsec-test-7f3a";

/// The signature the receiver expects for `body`.
fn expected_signature(body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Refuses unsigned or badly signed POSTs (401), and the first POST about
/// batch `flaky` (500); accepts the rest (204).
async fn receive(State(seen): State<Seen>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("x-flinkq-signature") != expected_signature(&raw) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&raw) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut seen = seen.lock().expect("lock");
    let first_flaky =
        body["batch"] == "flaky" && !seen.iter().any(|(_, b, _)| b["batch"] == "flaky");
    let status = if first_flaky {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    seen.push((header("idempotency-key"), body, status.as_u16()));
    status
}

/// A webhook receiver on a free port; its URL carries a token.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hooks/secret-token", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hooks/secret-token"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batch_completion_is_posted_once_and_a_refused_post_is_retried() {
    let (url, seen) = receiver().await;
    let mut world = Scenario::start(Duration::from_millis(100)).await;
    world.setup.extra_env.extend([
        ("FLINKQ_BATCH_WEBHOOK".to_owned(), url),
        ("FLINKQ_BATCH_WEBHOOK_SECRET".to_owned(), SECRET.to_owned()),
    ]);
    // both workers send: the consumer group hands each event to one of them
    let _a = WorkerProcess::spawn(&world.setup);
    let _b = WorkerProcess::spawn(&world.setup);
    // the group is created when a worker starts: enqueue after it exists
    wait_for(
        "the webhook consumer group",
        Duration::from_secs(10),
        async || {
            let mut conn = world.store.connection();
            let groups: redis::Value = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(world.store.keys().events())
                .query_async(&mut conn)
                .await
                .ok()?;
            matches!(groups, redis::Value::Array(ref g) if !g.is_empty()).then_some(())
        },
    )
    .await;

    let clean = world.logins(12, &Script::pending(1));
    let good = world.logins(4, &Script::default());
    let bad = world.logins(2, &Script::invalid());
    world.enqueue("clean", &clean).await;
    world.enqueue("flaky", &[good, bad].concat()).await;
    world.wait_finished("clean", Duration::from_secs(30)).await;
    world.wait_finished("flaky", Duration::from_secs(30)).await;

    wait_for(
        "both completions delivered",
        Duration::from_secs(20),
        async || {
            let seen = seen.lock().expect("lock");
            (seen.iter().filter(|(_, _, status)| *status < 300).count() >= 2).then_some(())
        },
    )
    .await;
    // time for a duplicate to show up, if there were one
    tokio::time::sleep(Duration::from_secs(2)).await;

    let seen = seen.lock().expect("lock").clone();
    let of = |batch: &str| {
        seen.iter()
            .filter(|(_, body, _)| body["batch"] == batch)
            .cloned()
            .collect::<Vec<_>>()
    };
    let clean_posts = of("clean");
    assert_eq!(clean_posts.len(), 1, "one POST per completion: {seen:?}");
    let (key, body, _) = &clean_posts[0];
    assert_eq!(body["type"], "batch_completed");
    assert_eq!(
        &body["event_id"], key,
        "the Idempotency-Key is the event id"
    );
    assert_eq!(
        (
            body["counts"]["succeeded"].as_u64(),
            body["counts"]["total"].as_u64()
        ),
        (Some(12), Some(12))
    );

    let flaky_posts = of("flaky");
    let statuses: Vec<u16> = flaky_posts.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(
        statuses,
        [500, 204],
        "refused once, then delivered: {seen:?}"
    );
    assert_eq!(
        flaky_posts[0].0, flaky_posts[1].0,
        "the retry has the same key"
    );
    let counts = &flaky_posts[1].1["counts"];
    assert_eq!(
        (counts["succeeded"].as_u64(), counts["failed"].as_u64()),
        (Some(4), Some(2))
    );

    let events = world.store.batch_events(100).await.expect("events");
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ids.contains(&key.as_str()),
        "the key names a stream entry: {ids:?}"
    );
    assert_eq!(events.len(), 2, "one stream entry per completion");
    // both acknowledged: nothing left pending in the group
    let mut conn = world.store.connection();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(world.store.keys().events())
        .arg("batch-webhook")
        .query_async(&mut conn)
        .await
        .expect("XPENDING");
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING answer: {pending:?}");
    };
    assert_eq!(summary.first(), Some(&redis::Value::Int(0)), "{summary:?}");

    let log = std::fs::read_to_string(&world.setup.log_file).expect("worker log");
    assert!(
        !log.contains("secret-token"),
        "the webhook URL is never logged whole"
    );
    assert!(!log.contains(SECRET), "the signing secret is never logged");
}
