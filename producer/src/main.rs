//! `flinkq`: see `flinkq --help`.

use clap::Parser;
use flinkq_producer::cli::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    flinkq_shared::telemetry::init(cli.log_format);
    let mut out = std::io::stdout().lock();
    if let Err(error) = flinkq_producer::run(&cli, &mut out).await {
        eprintln!("flinkq: {error}");
        std::process::exit(error.exit_code());
    }
}
