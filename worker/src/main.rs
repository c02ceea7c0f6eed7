//! `flinkq-worker`: see `flinkq-worker --help`.

use anyhow::Context;
use clap::Parser;
use flinkq_worker::{WorkerConfig, run};
use tokio::net::TcpListener;

// Every step allocates and frees many small buffers (Redis replies, HTTP
// headers, JSON) from several runtime threads: glibc's malloc and free took
// ~18% of the worker's CPU per step in a perf profile of a drain, mimalloc's
// thread-local free lists take a fraction of that (BENCHMARKS.md, issue 14).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let config = WorkerConfig::parse();
    // refused like clap's own parse errors (exit 2), before anything starts
    if let Err(error) = config.validate() {
        eprintln!("flinkq-worker: {error}");
        std::process::exit(2);
    }
    let runtime = config
        .runtime()
        .context("cannot start the async runtime; try another FLINKQ_WORKER_THREADS")?;
    runtime.block_on(serve(config))
}

async fn serve(config: WorkerConfig) -> anyhow::Result<()> {
    flinkq_shared::telemetry::init(config.log_format);
    let signal = flinkq_shared::shutdown::on_signal()?;
    let listener = TcpListener::bind(config.metrics_addr).await.with_context(|| {
        format!(
            "cannot listen on {} for /healthz; is another worker using it? Set FLINKQ_METRICS_ADDR",
            config.metrics_addr
        )
    })?;
    let shutdown = async move {
        let signal = signal.await;
        tracing::info!(%signal, "shutdown signal");
    };
    // On the runtime's threads, not on this one (`block_on`'s): apalis
    // hands every step over from this future, and from here each hand-off
    // and each step's end would wake a thread of its own.
    tokio::spawn(run(config, listener, shutdown))
        .await
        .context("the worker task panicked")??;
    Ok(())
}
