//! The Prometheus mapping of worker [`Event`]s, plus the queue gauges read
//! from Redis. Names follow Prometheus conventions (`flinkq_` prefix,
//! `_total` counters, `_seconds` units); every label has a bounded set of
//! values (never a loginId or job id).

use std::time::Duration;

use flinkq_shared::store::{QueueStats, RedisErrorKind, StateCounts};
use flinkq_shared::{JobState, LocalCode, Product, TransitionKind, known_code};
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, exponential_buckets,
};

use crate::events::{AbandonReason, Endpoint, Event, EventSink, LostAnswer, RedisOp, StepLabel};

/// The `queue` label values of `flinkq_queue_jobs`.
const QUEUES: [&str; 4] = ["due_now", "scheduled", "leased", "dead"];

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
    unreplicated: IntCounter,
    webhook: IntCounterVec,
    lost_answers: IntCounterVec,
    orphans: IntCounter,
}

/// Creates metrics and registers them in one step. Names, help and labels
/// are static: a failure is a programming error, caught by this module's
/// tests, hence the `expect`s.
struct Registrar(Registry);

impl Registrar {
    fn add<M: Collector + Clone + 'static>(&self, metric: Result<M, prometheus::Error>) -> M {
        let metric = metric.expect("static metric definition");
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric names are unique");
        metric
    }

    fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    /// Histograms with exponential buckets: `count` of them from `start`,
    /// each twice the previous.
    fn histograms(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        (start, count): (f64, usize),
    ) -> HistogramVec {
        let buckets = exponential_buckets(start, 2.0, count).expect("static buckets");
        self.add(HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets),
            labels,
        ))
    }

    fn histogram(&self, name: &str, help: &str, (start, count): (f64, usize)) -> Histogram {
        let buckets = exponential_buckets(start, 2.0, count).expect("static buckets");
        self.add(Histogram::with_opts(
            HistogramOpts::new(name, help).buckets(buckets),
        ))
    }
}

impl Metrics {
    /// Creates and registers every metric, with every labelled series it
    /// can have.
    pub fn new() -> Self {
        let r = Registrar(Registry::new());
        r.gauges(
            "flinkq_build_info",
            "Always 1; labels say which build runs.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        let metrics = Metrics {
            enqueued: r.counter(
                "flinkq_jobs_enqueued_total",
                "Jobs ever enqueued in the namespace (read from Redis; the same value on every worker).",
            ),
            finished: r.counters(
                "flinkq_jobs_finished_total",
                "Jobs this worker brought to a terminal state, by state.",
                &["state"],
            ),
            steps: r.counters(
                "flinkq_steps_total",
                "Steps run by this worker, by product, step (authorize, poll, claim) and outcome.",
                &["product", "step", "outcome"],
            ),
            requests: r.counters(
                "flinkq_flinks_requests_total",
                "Calls to Flinks, by product, endpoint (the call's name), HTTP status (none: no answer) and FlinksCode.",
                &["product", "endpoint", "status", "code"],
            ),
            request_seconds: r.histograms(
                "flinkq_flinks_request_duration_seconds",
                "Latency of calls to Flinks, by product and endpoint (the call's name).",
                &["product", "endpoint"],
                (0.005, 14),
            ),
            job_seconds: r.histograms(
                "flinkq_job_duration_seconds",
                "Enqueue to terminal state, by state.",
                &["state"],
                (0.25, 15),
            ),
            lateness_seconds: r.histogram(
                "flinkq_poll_lateness_seconds",
                "How late a poll started: actual start minus due time.",
                (0.001, 17),
            ),
            queue: r.gauges(
                "flinkq_queue_jobs",
                "Jobs by queue position: due_now, scheduled (later), leased (in flight), dead (letters).",
                &["queue"],
            ),
            jobs: r.gauges("flinkq_jobs", "Jobs in the namespace by state.", &["state"]),
            in_flight: r.gauge("flinkq_steps_in_flight", "Steps this worker is running now."),
            redis_errors: r.counters(
                "flinkq_redis_errors_total",
                "Failed Redis calls, by operation and kind: readonly (a write reached a replica: a demoted primary), redirect (MOVED/ASK/TRYAGAIN/CLUSTERDOWN: the cluster's slot map moved), timeout, connection (refused, dropped), not_replicated (FLINKQ_REDIS_WAIT_REPLICAS not reached in time), other.",
                &["op", "kind"],
            ),
            unreplicated: r.counter(
                "flinkq_commits_unreplicated_total",
                "Commits applied on the primary but not confirmed by FLINKQ_REDIS_WAIT_REPLICAS replicas within FLINKQ_REDIS_WAIT_TIMEOUT: not acknowledged, retried like a commit whose answer was lost.",
            ),
            webhook: r.counters(
                "flinkq_batch_webhook_posts_total",
                "POSTs of batch completions to FLINKQ_BATCH_WEBHOOK, by outcome (delivered, failed).",
                &["outcome"],
            ),
            lost_answers: r.counters(
                "flinkq_commits_after_lost_answer_total",
                "Commits whose answer was lost (Redis timeout), by how the retry or read-back settled them: applied (applied after a lost answer, counted as committed), not_applied, unknown.",
                &["outcome"],
            ),
            orphans: r.counter(
                "flinkq_orphan_entries_dropped_total",
                "Queue and index entries the reaper dropped because their job hash was gone (evicted or deleted).",
            ),
            registry: r.0,
        };
        metrics.create_every_series();
        metrics
    }

    /// Labelled series exist from the start, so dashboards and alerts never
    /// query a missing series.
    fn create_every_series(&self) {
        for state in JobState::ALL {
            self.jobs.with_label_values(&[state.as_str()]);
            if state.is_terminal() {
                self.finished.with_label_values(&[state.as_str()]);
                self.job_seconds.with_label_values(&[state.as_str()]);
            }
        }
        for queue in QUEUES {
            self.queue.with_label_values(&[queue]);
        }
        for spec in Product::all() {
            let product = spec.as_str();
            for endpoint in Endpoint::of_product(spec) {
                let endpoint = endpoint.as_str();
                self.request_seconds.with_label_values(&[product, endpoint]);
                self.requests
                    .with_label_values(&[product, endpoint, "200", "none"]);
                if endpoint != Endpoint::AUTHORIZE.as_str() {
                    self.requests.with_label_values(&[
                        product,
                        endpoint,
                        "202",
                        "OPERATION_PENDING",
                    ]);
                }
            }
            for step in StepLabel::ALL {
                for kind in TransitionKind::ALL {
                    self.steps
                        .with_label_values(&[product, step.as_str(), kind.as_str()]);
                }
            }
            for reason in AbandonReason::ALL {
                self.steps
                    .with_label_values(&[product, "any", reason.as_str()]);
            }
        }
        for op in RedisOp::ALL {
            for kind in RedisErrorKind::ALL {
                self.redis_errors
                    .with_label_values(&[op.as_str(), kind.as_str()]);
            }
        }
        for outcome in ["delivered", "failed"] {
            self.webhook.with_label_values(&[outcome]);
        }
        for outcome in LostAnswer::ALL {
            self.lost_answers.with_label_values(&[outcome.as_str()]);
        }
    }

    /// Sets the queue and state gauges from Redis.
    pub fn set_queue(&self, stats: QueueStats, counts: StateCounts) {
        let set = |queue: &str, value: u64| {
            self.queue.with_label_values(&[queue]).set(clamp(value));
        };
        let [due_now, scheduled, leased, dead] = QUEUES;
        set(due_now, stats.due_now);
        set(scheduled, stats.scheduled);
        set(leased, stats.leased);
        set(dead, stats.dead);
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
                product,
                endpoint,
                status,
                code,
                latency,
            } => {
                let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
                let code = code.map_or("none", bounded_code);
                self.requests
                    .with_label_values(&[product.as_str(), endpoint.as_str(), &status, code])
                    .inc();
                self.request_seconds
                    .with_label_values(&[product.as_str(), endpoint.as_str()])
                    .observe(seconds(latency));
            }
            Event::StepCommitted {
                product,
                step,
                kind,
                state,
                job_age,
            } => {
                self.steps
                    .with_label_values(&[product.as_str(), step.as_str(), kind.as_str()])
                    .inc();
                if kind == TransitionKind::Finish {
                    self.finished.with_label_values(&[state.as_str()]).inc();
                    if let Some(age) = job_age {
                        self.job_seconds
                            .with_label_values(&[state.as_str()])
                            .observe(seconds(age));
                    }
                }
            }
            Event::StepAbandoned { product, reason } => {
                self.steps
                    .with_label_values(&[product.as_str(), "any", reason.as_str()])
                    .inc();
            }
            Event::JobsTimedOutByReaper { count } => {
                self.finished
                    .with_label_values(&[JobState::TimedOut.as_str()])
                    .inc_by(count);
            }
            Event::RedisError { op, kind } => {
                self.redis_errors
                    .with_label_values(&[op.as_str(), kind.as_str()])
                    .inc();
                if op == RedisOp::Commit && kind == RedisErrorKind::NotReplicated {
                    self.unreplicated.inc();
                }
            }
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
    fn every_label_enum_value_has_a_series_from_the_start() {
        let text = Metrics::new().render();
        for op in RedisOp::ALL {
            for kind in RedisErrorKind::ALL {
                let series = format!(r#"flinkq_redis_errors_total{{kind="{kind}",op="{op}"}} 0"#);
                assert!(text.contains(&series), "{series} missing");
            }
        }
        assert!(text.contains("flinkq_commits_unreplicated_total 0"));
        for product in Product::all() {
            for reason in AbandonReason::ALL {
                let series = format!(
                    r#"flinkq_steps_total{{outcome="{reason}",product="{product}",step="any"}} 0"#
                );
                assert!(text.contains(&series), "{series} missing");
            }
            for step in StepLabel::ALL {
                for kind in TransitionKind::ALL {
                    let series = format!(
                        r#"flinkq_steps_total{{outcome="{}",product="{product}",step="{step}"}} 0"#,
                        kind.as_str()
                    );
                    assert!(text.contains(&series), "{series} missing");
                }
            }
            for endpoint in Endpoint::of_product(product) {
                let series = format!(
                    r#"flinkq_flinks_request_duration_seconds_count{{endpoint="{endpoint}",product="{product}"}} 0"#
                );
                assert!(text.contains(&series), "{series} missing");
            }
        }
        for (product, endpoint) in [
            ("attributes", "GetAccountsDetail"),
            ("attributes", "GetAccountsDetailAsync"),
            ("attributes", "GetAllAttributes"),
            ("statements", "GetStatements"),
            ("investments", "Authorize"),
        ] {
            let series = format!(
                r#"flinkq_flinks_request_duration_seconds_count{{endpoint="{endpoint}",product="{product}"}} 0"#
            );
            assert!(text.contains(&series), "{series} missing");
        }
    }

    #[test]
    fn labels_are_bounded_and_names_conventional() {
        let metrics = Metrics::new();
        let investments = Product::DEFAULT;
        let stage = investments.stage(0).expect("a stage");
        metrics.emit(Event::FlinksCall {
            product: investments,
            endpoint: Endpoint::of(stage.call(false)),
            status: Some(202),
            code: Some("operation_pending"),
            latency: Duration::from_millis(12),
        });
        metrics.emit(Event::FlinksCall {
            product: investments,
            endpoint: Endpoint::AUTHORIZE,
            status: Some(418),
            code: Some("SOMETHING_NEW_FROM_FLINKS"),
            latency: Duration::from_millis(3),
        });
        let text = metrics.render();
        assert!(text.contains(r#"flinkq_flinks_requests_total{code="OPERATION_PENDING",endpoint="Investments",product="investments",status="202"} 1"#), "{text}");
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
