//! `flinkq`: see `flinkq --help`.

use clap::Parser;
use flinkq_producer::cli::Cli;
use flinkq_producer::error::exit;

#[tokio::main]
async fn main() {
    let cli = Cli::try_parse().unwrap_or_else(|error| {
        // a bad flag or value is a usage error like the CLI's own (64,
        // EX_USAGE); --help and --version still exit 0
        if error.use_stderr() {
            let _ = error.print();
            std::process::exit(exit::USAGE);
        }
        error.exit()
    });
    flinkq_shared::telemetry::init(cli.log_format);
    let mut out = std::io::stdout().lock();
    if let Err(error) = flinkq_producer::run(&cli, &mut out).await {
        eprintln!("flinkq: {error}");
        std::process::exit(error.exit_code());
    }
}
