//! `flinkq-bench`: measures what flinkq costs per job on this machine, next
//! to Redis' own limit and the apalis-redis baseline, in one run.
//!
//!     cargo build --release --workspace --bins
//!     target/release/flinkq-bench all            # issue 6's sizes
//!     target/release/flinkq-bench drain --smoke  # small, as CI runs it

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use flinkq_tests::bench::{
    BenchScenario, Report, Sizes, Yardsticks, measure_yardsticks, run_scenario,
};
use flinkq_tests::redis_harness::RedisServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Enqueue,
    Drain,
    Hold,
    Recover,
}

/// Runs benchmark scenarios and prints one table.
#[derive(Debug, Parser)]
#[command(name = "flinkq-bench")]
struct Args {
    /// Scenario to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Which,
    /// Small sizes (CI smoke test): every path, seconds of work, no meaning.
    #[arg(long)]
    smoke: bool,
    /// Skip redis-benchmark and the apalis-redis baseline.
    #[arg(long)]
    no_yardsticks: bool,
    /// Skip only the apalis-redis baseline (it builds apalis-redis first).
    #[arg(long)]
    no_baseline: bool,
    /// The apalis-redis baseline script.
    #[arg(long, default_value = "../shared/bench/apalis-redis-baseline/run.sh")]
    baseline: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes = if args.smoke {
        Sizes::smoke()
    } else {
        Sizes::full()
    };
    let work = tempfile::tempdir()?;
    let yardsticks = if args.no_yardsticks {
        Yardsticks::default()
    } else {
        let redis = RedisServer::start()?;
        eprintln!("measuring yardsticks...");
        measure_yardsticks(
            redis.port(),
            (!args.no_baseline).then_some(args.baseline.as_path()),
        )
    };
    let scenarios = match args.scenario {
        Which::All => vec![
            BenchScenario::Enqueue,
            BenchScenario::Drain,
            BenchScenario::Hold,
            BenchScenario::Recover,
        ],
        Which::Enqueue => vec![BenchScenario::Enqueue],
        Which::Drain => vec![BenchScenario::Drain],
        Which::Hold => vec![BenchScenario::Hold],
        Which::Recover => vec![BenchScenario::Recover],
    };
    let mut report = Report::default();
    for scenario in scenarios {
        eprintln!("running {scenario:?}...");
        run_scenario(scenario, &sizes, &yardsticks, &mut report, work.path()).await;
    }
    if args.json {
        let out = serde_json::json!({"yardsticks": yardsticks, "figures": report.figures, "machine": machine()});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("machine: {}", machine());
        println!("yardsticks: {yardsticks:?}");
        print!("{}", report.table());
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name\t: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}
