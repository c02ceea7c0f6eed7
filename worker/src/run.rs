//! `run`: the worker process, from connected store to graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis_core::monitor::Monitor;
use apalis_core::worker::builder::WorkerBuilder;
use flinkq_shared::store::{CommitBatching, Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::StepBackend;
use crate::claimer::Claimer;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::events::EventSink;
use crate::executor::{Executor, StepService};
use crate::flinks::{FlinksClient, FlinksEndpoints};
use crate::health::{self, Health};
use crate::leases::HeldLeases;
use crate::metrics::Metrics;
use crate::result_sink::{ResultSink, ResultsKind};
use crate::results::ResultsDir;
use crate::services;
use crate::services::gauges::QueueGauges;
use crate::services::heartbeat::Heartbeat;
use crate::services::presence::Presence;
use crate::services::primary_probe::PrimaryProbe;
use crate::services::reaper::Reaper;
use crate::services::results_probe::{self, ResultsProbe};
use crate::services::retention::Retention;
use crate::services::webhook::BatchWebhook;
use crate::wake::ClaimWake;

/// Runs the worker until `shutdown` completes, then stops claiming, lets the
/// running steps finish (up to `shutdown_grace`), gives back unstarted ones
/// and returns. The health endpoint is served on `listener`.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    config.validate()?;
    let auth_key = config.resolved_auth_key()?;
    // one commit lane per 16 concurrent steps (at least 2, at most 8):
    // a commit waits behind the WAITs of the commits before it on its
    // lane, never behind claims or heartbeats (see `store::Durable`)
    let commit_connections = (config.concurrency as usize / 16).clamp(2, 8);
    let store = Store::connect(&StoreConfig {
        commit_connections,
        ..config.redis.store_config()
    })
    .await?;
    // the steps' commits go several to a call (group commit, see
    // `store::commit_batch`): one call in flight, or one per WAIT lane
    let in_flight = if config.redis.redis_wait_replicas > 0 {
        commit_connections
    } else {
        1
    };
    let store = store.with_commit_batching(CommitBatching::for_concurrency(
        config.concurrency as usize,
        in_flight,
    ));
    if config.redis.redis_wait_replicas > 0 {
        info!(
            replicas = config.redis.redis_wait_replicas,
            timeout = %humantime::format_duration(config.redis.redis_wait_timeout),
            "commits wait for Redis replicas (WAIT)"
        );
    }
    match store.topology().await {
        Ok(topology) => info!(%topology, "Redis primary serving the namespace"),
        Err(error) => warn!(%error, "cannot tell which Redis node serves the namespace"),
    }
    warn_if_redis_evicts(&store).await;
    if let Err(error) = store.load_worker_scripts().await {
        warn!(%error, "cannot load the Lua scripts at start; each loads on its first use");
    }
    let results = match config.results {
        ResultsKind::Files => ResultSink::Files {
            dir: writable_results_dir(&config.results_dir, job_lifetime(&config.policy()))?,
            ttl: config.result_ttl,
        },
        ResultsKind::Redis => ResultSink::Redis {
            ttl: config.result_ttl,
        },
    };
    let metrics = Arc::new(Metrics::new());
    let events: Arc<dyn EventSink> = metrics.clone();
    let flinks = FlinksClient::new(
        FlinksEndpoints {
            urls: config.flinks_urls(),
            auth_key,
            timeout: config.http_timeout,
            max_payload: config.max_payload,
        },
        events.clone(),
    )?;
    let stop = CancellationToken::new();
    let health = Health::default();
    let leases = HeldLeases::default();
    let slots = Arc::new(Semaphore::new(config.concurrency as usize));
    let wake = Arc::new(ClaimWake::default());

    let mut background = tokio::task::JoinSet::new();
    background.spawn(report_io(
        "health endpoint",
        health::serve(listener, health.clone(), metrics.clone(), stop.clone()),
    ));
    background.spawn(services::run(
        QueueGauges {
            store: store.clone(),
            leases: leases.clone(),
            metrics,
        },
        stop.clone(),
    ));
    background.spawn(services::run(
        Heartbeat {
            store: store.clone(),
            leases: leases.clone(),
            lease: config.lease,
            health: health.clone(),
            events: events.clone(),
        },
        stop.clone(),
    ));
    background.spawn(services::run(
        Presence::of_this_process(store.clone()),
        stop.clone(),
    ));
    background.spawn(services::run(
        PrimaryProbe {
            store: store.clone(),
            health: health.clone(),
            events: events.clone(),
        },
        stop.clone(),
    ));
    let reap_period = (config.lease / 2).max(Duration::from_millis(100));
    background.spawn(services::run(
        Reaper::new(store.clone(), reap_period, health.clone(), events.clone()),
        stop.clone(),
    ));
    background.spawn(services::run(
        Retention {
            store: store.clone(),
            period: reap_period,
            retention: config.retention,
            health: health.clone(),
            events: events.clone(),
        },
        stop.clone(),
    ));
    if config.results == ResultsKind::Files {
        background.spawn(services::run(
            ResultsProbe {
                dir: config.results_dir.clone(),
                health: health.clone(),
            },
            stop.clone(),
        ));
    }
    if let Some(url) = config.batch_webhook.clone() {
        let consumer = format!(
            "{}-{:04x}",
            flinkq_shared::instance::instance_name(),
            rand::random::<u16>()
        );
        let webhook = BatchWebhook::new(
            url,
            config.batch_webhook_secret.clone(),
            store.clone(),
            consumer,
            events.clone(),
        )
        .map_err(WorkerError::WebhookClient)?;
        background.spawn(services::run(webhook, stop.clone()));
    }

    let service = StepService::new(Executor {
        flinks,
        results,
        policy: config.policy(),
        lease: config.lease,
        rate_limit: config.rate_limit(),
        events: events.clone(),
        wake: wake.clone(),
    });
    let claimer = Claimer {
        store,
        lease: config.lease,
        authorize_timeout: config.authorize_timeout,
        begin_on_claim: (config.rate_limit().per_second <= 0.0)
            .then_some(config.policy().poll_interval),
        batch: config.claim_batch as usize,
        slots,
        leases,
        health,
        events,
        wake,
    };
    info!(
        namespace = %config.redis.namespace,
        concurrency = config.concurrency,
        poll_interval = %humantime::format_duration(config.poll_interval),
        poll_timeout = %humantime::format_duration(config.poll_timeout),
        "worker started"
    );
    let claim_stop = stop.clone();
    let grace = config.shutdown_grace;
    // A lazy timer: it starts when shutdown is requested, not now (apalis'
    // `shutdown_timeout` would start counting at construction).
    let monitor = Monitor::new()
        .with_terminator(async move {
            tokio::time::sleep(grace).await;
            warn!(grace = %humantime::format_duration(grace), "shutdown grace over; unfinished steps run again after their lease");
        })
        .register(move |_| {
            WorkerBuilder::new("flinkq-worker")
                .backend(StepBackend::start(
                    claimer.clone(),
                    claim_stop.child_token(),
                ))
                .build(service.clone())
        });
    let signal = async move {
        shutdown.await;
        info!("shutdown requested: no new claims, finishing running steps");
        Ok(())
    };
    let outcome = monitor.run_with_signal(signal).await;
    stop.cancel();
    while background.join_next().await.is_some() {}
    match outcome {
        Ok(()) => {
            info!("worker stopped");
            Ok(())
        }
        Err(error) => Err(WorkerError::Runtime(error.to_string())),
    }
}

/// BullMQ's production guide, and ours: `noeviction` is the only safe
/// `maxmemory-policy`; any other lets Redis drop a job or a lease when it
/// fills up. Only a warning (the operator may know better); when `CONFIG` is
/// refused (managed Redis) nothing can be checked and nothing is said.
async fn warn_if_redis_evicts(store: &Store) {
    match store.eviction_policy().await {
        Ok(Some(policy)) if policy != "noeviction" => warn!(
            %policy,
            "Redis maxmemory-policy is {policy}: under memory pressure Redis may evict flinkq's jobs, leases and counters; set maxmemory-policy to noeviction"
        ),
        Ok(_) => {}
        Err(error) => debug!(%error, "cannot read Redis' maxmemory-policy; eviction not checked"),
    }
}

/// The results directory, created if missing and proven writable: a
/// worker that cannot store results must not claim a single job. Staged
/// links older than any job can live are leftovers of attempts whose job
/// ended elsewhere (reaped, cancelled): they are swept here.
fn writable_results_dir(
    path: &std::path::Path,
    job_lifetime: Duration,
) -> Result<ResultsDir, WorkerError> {
    let refused = |reason: String| WorkerError::ResultsNotWritable {
        path: path.to_owned(),
        reason,
    };
    let dir = ResultsDir::create(path).map_err(|e| refused(e.source.to_string()))?;
    results_probe::probe(path).map_err(|e| refused(e.to_string()))?;
    match dir.sweep_staged(job_lifetime) {
        Ok(0) => {}
        Ok(swept) => info!(
            swept,
            "removed staged result links older than any job can live"
        ),
        Err(error) => {
            warn!(%error, "cannot sweep old staged result links; they only take disk space")
        }
    }
    Ok(dir)
}

/// The longest a job can live: no session after its authorize deadline,
/// no poll after its polling deadline; an hour on top for retries and reaps.
fn job_lifetime(policy: &flinkq_shared::Policy) -> Duration {
    policy.authorize_timeout + policy.poll_timeout + Duration::from_secs(3600)
}

async fn report_io(what: &'static str, task: impl Future<Output = std::io::Result<()>>) {
    if let Err(error) = task.await {
        warn!(%error, "{what} stopped");
    }
}
