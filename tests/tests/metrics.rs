//! `/metrics` tells what happened: a batch runs through a real worker and the
//! scraped values equal the counts.

use std::time::Duration;

use flinkq_tests::prom_text::{parse, value};
use flinkq_tests::scenario::Scenario;
use flinkq_tests::sim::Script;
use flinkq_tests::worker_process::{WorkerProcess, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_metrics_equal_what_happened() {
    let world = Scenario::start(Duration::from_millis(200)).await;
    let good = world.logins(50, &Script::pending(1));
    let bad = world.logins(5, &Script::invalid());
    world.enqueue("m", &[good, bad].concat()).await;
    let worker = WorkerProcess::spawn(&world.setup);
    world.wait_finished("m", Duration::from_secs(30)).await;

    let url = format!("http://127.0.0.1:{}/metrics", worker.metrics_port);
    let http = reqwest::Client::new();
    // the queue gauges refresh every few seconds: wait for the final state
    let samples = wait_for(
        "the gauges to show the finished batch",
        Duration::from_secs(15),
        async || {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            let samples = parse(&text);
            (value(&samples, "flinkq_jobs", &[("state", "succeeded")]) == Some(50.0))
                .then_some(samples)
        },
    )
    .await;
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels).unwrap_or(-1.0);

    assert_eq!(v("flinkq_jobs_enqueued_total", &[]), 55.0);
    assert_eq!(
        v("flinkq_jobs_finished_total", &[("state", "succeeded")]),
        50.0
    );
    assert_eq!(v("flinkq_jobs_finished_total", &[("state", "failed")]), 5.0);
    assert_eq!(
        v("flinkq_jobs_finished_total", &[("state", "timed_out")]),
        0.0
    );
    assert_eq!(v("flinkq_jobs", &[("state", "failed")]), 5.0);
    assert_eq!(v("flinkq_jobs", &[("state", "polling")]), 0.0);
    let request = |endpoint: &str, status: &str, code: &str| {
        v(
            "flinkq_flinks_requests_total",
            &[
                ("product", "investments"),
                ("endpoint", endpoint),
                ("status", status),
                ("code", code),
            ],
        )
    };
    // the endpoint label is the call's name in the product table
    assert_eq!(request("Authorize", "200", "none"), 50.0);
    assert_eq!(request("Authorize", "401", "INVALID_LOGIN"), 5.0);
    assert_eq!(request("Investments", "202", "OPERATION_PENDING"), 50.0);
    assert_eq!(request("Investments", "200", "none"), 50.0);
    assert_eq!(
        v(
            "flinkq_flinks_request_duration_seconds_count",
            &[("product", "investments"), ("endpoint", "Investments")]
        ),
        100.0
    );
    assert_eq!(
        v(
            "flinkq_steps_total",
            &[("step", "authorize"), ("outcome", "advance")]
        ),
        50.0
    );
    assert_eq!(
        v(
            "flinkq_steps_total",
            &[("step", "poll"), ("outcome", "snooze")]
        ),
        50.0
    );
    assert_eq!(
        v(
            "flinkq_steps_total",
            &[("step", "poll"), ("outcome", "finish")]
        ),
        50.0
    );
    assert_eq!(
        v(
            "flinkq_steps_total",
            &[("step", "authorize"), ("outcome", "finish")]
        ),
        5.0
    );
    assert_eq!(v("flinkq_poll_lateness_seconds_count", &[]), 100.0);
    assert_eq!(
        v(
            "flinkq_job_duration_seconds_count",
            &[("state", "succeeded")]
        ),
        50.0
    );
    for queue in ["due_now", "scheduled", "leased", "dead"] {
        let expected = if queue == "dead" { 5.0 } else { 0.0 };
        assert_eq!(
            v("flinkq_queue_jobs", &[("queue", queue)]),
            expected,
            "{queue}"
        );
    }
    assert_eq!(
        v("flinkq_redis_errors_total", &[]),
        0.0,
        "no Redis error happened"
    );
    assert_eq!(v("flinkq_steps_total", &[("outcome", "fenced")]), 0.0);
    assert_eq!(v("flinkq_build_info", &[]), 1.0);
}
