//! `flinkq-worker`: see `flinkq-worker --help`.

use anyhow::Context;
use clap::Parser;
use flinkq_worker::{WorkerConfig, run};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = WorkerConfig::parse();
    // refused like clap's own parse errors (exit 2), before anything starts
    if let Err(error) = config.validate() {
        eprintln!("flinkq-worker: {error}");
        std::process::exit(2);
    }
    flinkq_shared::telemetry::init(config.log_format);
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let listener = TcpListener::bind(config.metrics_addr).await.with_context(|| {
        format!(
            "cannot listen on {} for /healthz; is another worker using it? Set FLINKQ_METRICS_ADDR",
            config.metrics_addr
        )
    })?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    run(config, listener, shutdown).await?;
    Ok(())
}
