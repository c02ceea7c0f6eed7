//! `flinkq-bench`: measures what flinkq costs per job and per step on this
//! machine, next to Redis' own limit, the apalis-redis baseline and BullMQ,
//! in one run.
//!
//!     cargo build --release --workspace --bins
//!     target/release/flinkq-bench all                    # issue 6's sizes
//!     target/release/flinkq-bench drain --logins 5000    # drain vs BullMQ
//!     target/release/flinkq-bench drain --smoke --no-baseline --no-bullmq  # small, as CI runs it

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use flinkq_tests::bench::{
    BenchScenario, BullmqSetup, Report, Sizes, Yardsticks, measure_bullmq, measure_yardsticks,
    run_scenario,
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
    /// Logins of the enqueue and drain scenarios (and BullMQ's), instead of
    /// the sizes of --smoke or issue 6.
    #[arg(long)]
    logins: Option<usize>,
    /// Jobs of the hold scenario (issue 6's size: 10,000; issue 14's
    /// lateness target is for 5,000).
    #[arg(long)]
    hold_jobs: Option<usize>,
    /// Skip every yardstick: redis-benchmark, apalis-redis and BullMQ.
    #[arg(long)]
    no_yardsticks: bool,
    /// Skip only the apalis-redis baseline (it builds apalis-redis first).
    #[arg(long)]
    no_baseline: bool,
    /// The apalis-redis baseline script.
    #[arg(long, default_value = "../shared/bench/apalis-redis-baseline/run.sh")]
    baseline: PathBuf,
    /// Skip only the BullMQ yardstick (it runs Node and installs BullMQ with
    /// npm on its first run).
    #[arg(long)]
    no_bullmq: bool,
    /// The peers' folder: BullMQ's step-job program (`bullmq/worker.js`,
    /// `bullmq/enqueue.js`) and its `package-lock.json`.
    #[arg(long, default_value = "../shared/bench/peers")]
    peers: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut sizes = if args.smoke {
        Sizes::smoke()
    } else {
        Sizes::full()
    };
    if let Some(n) = args.logins {
        anyhow::ensure!(n > 0, "--logins must be at least 1");
        sizes.enqueue = n;
        sizes.drain = n;
    }
    if let Some(n) = args.hold_jobs {
        anyhow::ensure!(n > 0, "--hold-jobs must be at least 1");
        sizes.hold_jobs = n;
    }
    let work = tempfile::tempdir()?;
    let mut yardsticks = if args.no_yardsticks {
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
    let drains = scenarios.contains(&BenchScenario::Drain);
    let skipped = if args.no_yardsticks {
        Some("--no-yardsticks")
    } else if args.no_bullmq {
        Some("--no-bullmq")
    } else if !drains {
        Some("no drain scenario in this run")
    } else {
        None
    };
    match skipped {
        Some(why) => yardsticks.bullmq_note = Some(format!("skipped ({why})")),
        None => {
            eprintln!(
                "running the BullMQ yardstick ({} logins, {})...",
                sizes.drain,
                args.peers.display()
            );
            let setup = BullmqSetup {
                peers: args.peers.clone(),
                install_dir: npm_dir()?,
                work: work.path().to_path_buf(),
                drain_timeout: Duration::from_secs(1_800),
            };
            match measure_bullmq(&setup, sizes.drain).await {
                Ok(figures) => yardsticks.bullmq = Some(figures),
                Err(e) => yardsticks.bullmq_note = Some(format!("failed: {e}")),
            }
        }
    }
    if let Some(note) = &yardsticks.bullmq_note {
        eprintln!("BullMQ yardstick {note}");
    }
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
        print!("{}", yardsticks.summary());
        print!("{}", report.table());
    }
    Ok(())
}

/// `<target>/bench-bullmq`, next to this binary's `<target>/<profile>/`:
/// BullMQ's npm packages stay out of the sources and survive between runs.
fn npm_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow::anyhow!("{} has no target folder", exe.display()))?;
    Ok(target.join("bench-bullmq"))
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
