//! `flinkq-demo`: the whole product on one machine, for the README's quick
//! start. Uses the Redis at FLINKQ_REDIS_URL or starts a private one, starts
//! the Flinks simulator, one `flinkq-worker`, enqueues 1,000 demo logins with
//! `flinkq enqueue`, prints progress until every job is finished, stops the
//! worker with SIGTERM, and leaves the payloads in ./results.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use flinkq_shared::LoginId;
use flinkq_shared::store::{Store, StoreConfig};
use flinkq_tests::redis_harness::RedisServer;
use flinkq_tests::sim::{DefaultScript, SimConfig, Simulator};
use flinkq_tests::worker_process::{WorkerProcess, WorkerSetup, flinkq_cli};

/// Runs flinkq end to end locally against the Flinks simulator.
#[derive(Debug, Parser)]
#[command(name = "flinkq-demo")]
struct Demo {
    /// Redis to use; a private redis-server is started when none answers.
    #[arg(
        long,
        env = "FLINKQ_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// How many demo logins to enqueue.
    #[arg(long, default_value_t = 1_000)]
    logins: usize,
    /// Poll interval (Flinks asks for 10s; the demo is impatient).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// Where result files go.
    #[arg(long, default_value = "./results")]
    results_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let demo = Demo::parse();
    let (redis_url, _private_redis) =
        match Store::connect(&StoreConfig::new(&demo.redis_url, "demo")).await {
            Ok(_) => {
                println!(
                    "using Redis at {}",
                    flinkq_shared::store::redact_url(&demo.redis_url)
                );
                (demo.redis_url.clone(), None)
            }
            Err(_) => {
                let redis = RedisServer::start()
                    .context("no Redis answered and redis-server could not be started")?;
                println!(
                    "no Redis answered at {}; started a private redis-server at {}",
                    demo.redis_url,
                    redis.url()
                );
                (redis.url(), Some(redis))
            }
        };
    let namespace = format!("demo-{}", std::process::id());

    let sim = Simulator::start(SimConfig {
        default_script: DefaultScript::FromLoginId,
        min_poll_interval: demo.poll_interval,
        ..SimConfig::default()
    })
    .await
    .context("cannot start the Flinks simulator")?;
    println!("Flinks simulator at {}", sim.base_url());

    let work = std::env::temp_dir().join(format!("flinkq-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).context("cannot create the demo work directory")?;
    let setup = WorkerSetup {
        namespace: namespace.clone(),
        poll_interval: demo.poll_interval,
        poll_timeout: Duration::from_secs(120),
        lease: Duration::from_secs(10),
        results_dir: demo.results_dir.clone(),
        log_file: work.join("worker.log"),
        ..WorkerSetup::new(
            &redis_url,
            &sim.banking_base_url(),
            &sim.wealth_base_url(),
            &work,
        )
    };

    let input: String = (0..demo.logins)
        .map(|_| format!("{}\n", LoginId::random()))
        .collect();
    let batch = "demo";
    let out = flinkq_cli(
        &redis_url,
        &namespace,
        &["enqueue", "--batch", batch, "--file", "-"],
        Some(input.as_bytes()),
    );
    std::io::stdout().write_all(&out.stdout)?;
    std::io::stderr().write_all(&out.stderr)?;
    if !out.status.success() {
        bail!("flinkq enqueue failed ({})", out.status);
    }

    let mut worker = WorkerProcess::spawn(&setup);
    println!(
        "worker started (pid {}, log {}, health http://127.0.0.1:{}/healthz)",
        worker.pid(),
        setup.log_file.display(),
        worker.metrics_port
    );
    let store = Store::connect(&StoreConfig::new(&redis_url, &namespace)).await?;
    let started = Instant::now();
    loop {
        let c = store.counts(Some(batch)).await?;
        println!(
            "[{:>5.1}s] queued {:>4}  authorizing {:>4}  polling {:>4}  succeeded {:>4}  failed {:>4}  timed_out {:>4}",
            started.elapsed().as_secs_f64(),
            c.queued,
            c.authorizing,
            c.polling,
            c.succeeded,
            c.failed,
            c.timed_out
        );
        if c.total > 0 && c.unfinished() == 0 {
            break;
        }
        if let Some(status) = worker.try_exit_status() {
            bail!(
                "the worker exited early ({status}); see {}",
                setup.log_file.display()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    match worker.sigterm(Duration::from_secs(30)) {
        Some(status) if status.success() => println!("worker stopped cleanly (SIGTERM, exit 0)"),
        other => println!("worker stop: {other:?}"),
    }
    let totals = sim.totals();
    println!(
        "done in {:.1}s: simulator saw {} Authorize and {} Investments calls, {} contract violations",
        started.elapsed().as_secs_f64(),
        totals.authorize_calls,
        totals.investments_calls,
        sim.violations().len()
    );
    println!(
        "results in {}/<product>/<loginId>.json; failed logins: `flinkq --namespace {namespace} --redis-url {redis_url} job <loginId>`",
        demo.results_dir.display()
    );
    Ok(())
}
