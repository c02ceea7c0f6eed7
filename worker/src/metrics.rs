//! The Prometheus mapping of worker [`Event`]s, plus the queue gauges read
//! from Redis. Names follow Prometheus conventions (`flinkq_` prefix,
//! `_total` counters, `_seconds` units); every label has a bounded set of
//! values (never a loginId or job id).

use std::time::Duration;

use flinkq_shared::store::{QueueStats, StateCounts};
use flinkq_shared::{JobState, LocalCode, TransitionKind, known_code};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

use crate::events::{Event, EventSink, LostAnswer};

/// Every Redis operation that reports errors (the `op` label).
const REDIS_OPS: [&str; 9] = [
    "claim",
    "begin",
    "commit",
    "resolve_commit",
    "extend",
    "reap",
    "purge",
    "stats",
    "webhook",
];

/// Every flinkq metric, registered in one registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    enqueued: IntCounter,
    finished: IntCounterVec,
    steps: IntCounterVec,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    job_seconds: HistogramVec,
    lateness_seconds: Histogram,
    queue: IntGaugeVec,
    jobs: IntGaugeVec,
    in_flight: IntGauge,
    redis_errors: IntCounterVec,
    webhook: IntCounterVec,
    lost_answers: IntCounterVec,
    orphans: IntCounter,
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid histogram")
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter")
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// Static names and labels: a registration failure is a programming
    /// error, caught by this module's tests.
    pub fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::new(),
            enqueued: IntCounter::new(
                "flinkq_jobs_enqueued_total",
                "Jobs ever enqueued in the namespace (read from Redis; the same value on every worker).",
            )
            .expect("valid counter"),
            finished: counter(
                "flinkq_jobs_finished_total",
                "Jobs this worker brought to a terminal state, by state.",
                &["state"],
            ),
            steps: counter(
                "flinkq_steps_total",
                "Steps run by this worker, by step (authorize, poll, claim) and outcome.",
                &["step", "outcome"],
            ),
            requests: counter(
                "flinkq_flinks_requests_total",
                "Calls to Flinks, by endpoint, HTTP status (none: no answer) and FlinksCode.",
                &["endpoint", "status", "code"],
            ),
            request_seconds: histogram(
                "flinkq_flinks_request_duration_seconds",
                "Latency of calls to Flinks.",
                &["endpoint"],
                exponential_buckets(0.005, 2.0, 14).expect("buckets"),
            ),
            job_seconds: histogram(
                "flinkq_job_duration_seconds",
                "Enqueue to terminal state, by state.",
                &["state"],
                exponential_buckets(0.25, 2.0, 15).expect("buckets"),
            ),
            lateness_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "flinkq_poll_lateness_seconds",
                    "How late a poll started: actual start minus due time.",
                )
                .buckets(exponential_buckets(0.001, 2.0, 17).expect("buckets")),
            )
            .expect("valid histogram"),
            queue: IntGaugeVec::new(
                Opts::new(
                    "flinkq_queue_jobs",
                    "Jobs by queue position: due_now, scheduled (later), leased (in flight), dead (letters).",
                ),
                &["queue"],
            )
            .expect("valid gauge"),
            jobs: IntGaugeVec::new(Opts::new("flinkq_jobs", "Jobs in the namespace by state."), &["state"])
                .expect("valid gauge"),
            in_flight: IntGauge::new("flinkq_steps_in_flight", "Steps this worker is running now.")
                .expect("valid gauge"),
            redis_errors: counter("flinkq_redis_errors_total", "Failed Redis calls, by operation.", &["op"]),
            webhook: counter(
                "flinkq_batch_webhook_posts_total",
                "POSTs of batch completions to FLINKQ_BATCH_WEBHOOK, by outcome (delivered, failed).",
                &["outcome"],
            ),
            lost_answers: counter(
                "flinkq_commits_after_lost_answer_total",
                "Commits whose answer was lost (Redis timeout), by how the retry or read-back settled them: applied (applied after a lost answer, counted as committed), not_applied, unknown.",
                &["outcome"],
            ),
            orphans: IntCounter::new(
                "flinkq_orphan_entries_dropped_total",
                "Queue and index entries the reaper dropped because their job hash was gone (evicted or deleted).",
            )
            .expect("valid counter"),
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "flinkq_build_info",
                "Always 1; labels say which build runs.",
            ),
            &["version"],
        )
        .expect("valid gauge");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let registry = &metrics.registry;
        registry.register(Box::new(build)).expect("register");
        registry
            .register(Box::new(metrics.enqueued.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.finished.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.steps.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.requests.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.request_seconds.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.job_seconds.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.lateness_seconds.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.queue.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.jobs.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.in_flight.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.redis_errors.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.webhook.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.lost_answers.clone()))
            .expect("register");
        registry
            .register(Box::new(metrics.orphans.clone()))
            .expect("register");
        // Labelled series exist from the start, so dashboards and alerts
        // never query a missing series.
        for state in JobState::ALL {
            metrics.jobs.with_label_values(&[state.as_str()]);
            if state.is_terminal() {
                metrics.finished.with_label_values(&[state.as_str()]);
                metrics.job_seconds.with_label_values(&[state.as_str()]);
            }
        }
        for queue in ["due_now", "scheduled", "leased", "dead"] {
            metrics.queue.with_label_values(&[queue]);
        }
        for endpoint in ["authorize", "investments"] {
            metrics.request_seconds.with_label_values(&[endpoint]);
            metrics
                .requests
                .with_label_values(&[endpoint, "200", "none"]);
        }
        metrics
            .requests
            .with_label_values(&["investments", "202", "OPERATION_PENDING"]);
        for step in ["authorize", "poll", "claim"] {
            for kind in [
                TransitionKind::Advance,
                TransitionKind::Snooze,
                TransitionKind::Retry,
                TransitionKind::Reauthorize,
                TransitionKind::Finish,
            ] {
                metrics.steps.with_label_values(&[step, outcome(kind)]);
            }
        }
        for reason in ["fenced", "lost", "commit_failed"] {
            metrics.steps.with_label_values(&["any", reason]);
        }
        for op in REDIS_OPS {
            metrics.redis_errors.with_label_values(&[op]);
        }
        for outcome in ["delivered", "failed"] {
            metrics.webhook.with_label_values(&[outcome]);
        }
        for outcome in LostAnswer::ALL {
            metrics.lost_answers.with_label_values(&[outcome.as_str()]);
        }
        metrics
    }

    /// Sets the queue and state gauges from Redis.
    pub fn set_queue(&self, stats: QueueStats, counts: StateCounts) {
        let set = |queue: &str, value: u64| {
            self.queue.with_label_values(&[queue]).set(clamp(value));
        };
        set("due_now", stats.due_now);
        set("scheduled", stats.scheduled);
        set("leased", stats.leased);
        set("dead", stats.dead);
        for state in JobState::ALL {
            self.jobs
                .with_label_values(&[state.as_str()])
                .set(clamp(counts.get(state)));
        }
        let seen = self.enqueued.get();
        if stats.enqueued_total > seen {
            self.enqueued.inc_by(stats.enqueued_total - seen);
        }
    }

    /// Sets the in-flight gauge.
    pub fn set_in_flight(&self, steps: usize) {
        self.in_flight.set(i64::try_from(steps).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            return format!("# encoding failed: {error}\n");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl EventSink for Metrics {
    fn emit(&self, event: Event<'_>) {
        match event {
            Event::PollStarted { lateness } => {
                self.lateness_seconds.observe(seconds(lateness));
            }
            Event::FlinksCall {
                endpoint,
                status,
                code,
                latency,
            } => {
                let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
                let code = code.map_or("none", bounded_code);
                self.requests
                    .with_label_values(&[endpoint, &status, code])
                    .inc();
                self.request_seconds
                    .with_label_values(&[endpoint])
                    .observe(seconds(latency));
            }
            Event::StepCommitted {
                step,
                kind,
                state,
                job_age,
            } => {
                self.steps.with_label_values(&[step, outcome(kind)]).inc();
                if kind == TransitionKind::Finish {
                    self.finished.with_label_values(&[state.as_str()]).inc();
                    if let Some(age) = job_age {
                        self.job_seconds
                            .with_label_values(&[state.as_str()])
                            .observe(seconds(age));
                    }
                }
            }
            Event::StepAbandoned { reason } => {
                self.steps.with_label_values(&["any", reason]).inc();
            }
            Event::JobsTimedOutByReaper { count } => {
                self.finished
                    .with_label_values(&[JobState::TimedOut.as_str()])
                    .inc_by(count);
            }
            Event::RedisError { op } => self.redis_errors.with_label_values(&[op]).inc(),
            Event::CommitAfterLostAnswer { outcome } => self
                .lost_answers
                .with_label_values(&[outcome.as_str()])
                .inc(),
            Event::OrphansDropped { count } => self.orphans.inc_by(count),
            Event::WebhookDelivery { delivered } => self
                .webhook
                .with_label_values(&[if delivered { "delivered" } else { "failed" }])
                .inc(),
        }
    }
}

fn outcome(kind: TransitionKind) -> &'static str {
    match kind {
        TransitionKind::Advance => "advance",
        TransitionKind::Snooze => "snooze",
        TransitionKind::Retry => "retry",
        TransitionKind::Reauthorize => "reauthorize",
        TransitionKind::Finish => "finish",
    }
}

fn bounded_code(code: &str) -> &'static str {
    known_code(code)
        .or_else(|| LocalCode::parse(code).map(LocalCode::as_str))
        .unwrap_or(if code.starts_with("HTTP_") {
            "none"
        } else {
            "OTHER"
        })
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_names_conventional() {
        let metrics = Metrics::new();
        metrics.emit(Event::FlinksCall {
            endpoint: "investments",
            status: Some(202),
            code: Some("operation_pending"),
            latency: Duration::from_millis(12),
        });
        metrics.emit(Event::FlinksCall {
            endpoint: "authorize",
            status: Some(418),
            code: Some("SOMETHING_NEW_FROM_FLINKS"),
            latency: Duration::from_millis(3),
        });
        let text = metrics.render();
        assert!(text.contains(r#"flinkq_flinks_requests_total{code="OPERATION_PENDING",endpoint="investments",status="202"} 1"#), "{text}");
        assert!(
            text.contains(r#"code="OTHER""#),
            "unknown codes collapse to OTHER"
        );
        assert!(text.contains(r#"flinkq_build_info{version="#));
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            assert!(name.starts_with("flinkq_"), "{name}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }
}
