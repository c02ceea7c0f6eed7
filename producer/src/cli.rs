//! The `flinkq` command line: one documented clap struct, flags also env vars.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use flinkq_shared::redis_args::{PlainName, RedisArgs};
use flinkq_shared::telemetry::LogFormat;
use flinkq_shared::{Priority, Product};

/// flinkq: enqueue Flinks data fetches (one product per job) and watch them.
#[derive(Debug, Parser)]
#[command(name = "flinkq", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Log format (logs go to stderr).
    #[arg(long, global = true, env = "FLINKQ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueue one fetch job per loginId (skipping logins with an unfinished job).
    Enqueue(EnqueueArgs),
    /// Counts of jobs per state, for the namespace or one batch.
    Status(StatusArgs),
    /// One login's newest job: state, steps, last error.
    Job(JobArgs),
    /// Recent batches with their counts, newest first.
    Batches(BatchesArgs),
    /// The registry of logins that `flinkq refresh` enqueues.
    Logins(LoginsArgs),
    /// Enqueue every registered login once (logins with an unfinished job are skipped).
    Refresh(RefreshArgs),
    /// Print a login's newest stored payload (from the files or the Redis sink).
    Result(ResultArgs),
    /// Failed and timed-out jobs: list, retry, purge.
    Dead(DeadArgs),
    /// Cancel a login's unfinished job (a worker holding it stops at its next step).
    Cancel(CancelArgs),
    /// Run until SIGTERM/SIGINT, refreshing every registered login at each cron
    /// tick. Replicas are safe: each tick is run by exactly one of them.
    Schedule(ScheduleArgs),
    /// Run the HTTP API (JSON under /api/v1) until SIGTERM/SIGINT: enqueue,
    /// batches, a login's jobs, dead letters, live events.
    Serve(crate::serve::ServeArgs),
}

/// `flinkq schedule`.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Cron expression: 5 fields (minute hour day-of-month month
    /// day-of-week), e.g. "0 2 * * *" for 02:00 every day; or 6 fields with
    /// seconds first, e.g. "*/30 * * * * *".
    #[arg(long, env = "FLINKQ_SCHEDULE_CRON")]
    pub cron: String,

    /// IANA time zone the cron fields are read in, e.g. America/Toronto
    /// (daylight saving time is followed).
    #[arg(long, env = "FLINKQ_SCHEDULE_TZ", default_value = "UTC")]
    pub tz: String,

    /// Claim order of the scheduled refreshes.
    #[arg(long, env = "FLINKQ_SCHEDULE_PRIORITY", value_enum, default_value_t = Priority::Low)]
    pub priority: Priority,

    /// Each tick's batch is named <prefix>-<tick in UTC>, e.g.
    /// nightly-20261125T070000Z, the same on every replica.
    #[arg(long, env = "FLINKQ_SCHEDULE_BATCH_PREFIX", default_value = "nightly", value_parser = BATCH_PREFIX)]
    pub batch_prefix: String,

    /// This replica's name in the run records (default: <hostname>-<pid>).
    #[arg(long, env = "FLINKQ_SCHEDULE_REPLICA")]
    pub replica: Option<String>,

    /// The Flinks products each tick refreshes, every registered login once
    /// per product, all in the tick's one batch. Repeat the flag (or give a
    /// comma-separated list in the env var) for several.
    #[arg(long = "product", env = "FLINKQ_PRODUCT", value_delimiter = ',', default_values_t = [Product::DEFAULT])]
    pub products: Vec<Product>,
}

/// Batch names become part of keys and of every line that prints them:
/// validated like namespaces (no newlines, escape sequences, braces, empty).
pub const BATCH_NAME: PlainName = PlainName::new("a batch name", "nightly-2026-11-25");

/// Scheduled batches are named `<prefix>-<tick>`: the prefix is plain, and
/// short enough that the whole name is still a valid batch name.
pub const BATCH_PREFIX: PlainName =
    PlainName::new("a batch prefix", "nightly").max_len(64 - "-20261125T070000Z".len());

/// `flinkq dead`.
#[derive(Debug, clap::Args)]
pub struct DeadArgs {
    #[command(subcommand)]
    pub action: DeadAction,
}

/// What to do with dead letters.
#[derive(Debug, Subcommand)]
pub enum DeadAction {
    /// List dead jobs, oldest first, with their reason.
    List {
        /// Print a JSON array of jobs.
        #[arg(long)]
        json: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only dead jobs of this product (default: every product).
        #[arg(long, env = "FLINKQ_PRODUCT")]
        product: Option<Product>,
    },
    /// Requeue a login's dead job of a product, or every dead job, as a fresh run.
    Retry {
        /// The loginId.
        login_id: Option<String>,
        /// Every dead job.
        #[arg(long)]
        all: bool,
        /// With a loginId: the product of its dead job (default:
        /// investments). With --all: only dead jobs of this product
        /// (default: every product).
        #[arg(long, env = "FLINKQ_PRODUCT")]
        product: Option<Product>,
    },
    /// Delete dead jobs that finished more than this long ago.
    Purge {
        /// Age, e.g. 7d, 12h.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Only dead jobs of this product (default: every product).
        #[arg(long, env = "FLINKQ_PRODUCT")]
        product: Option<Product>,
    },
}

/// `flinkq cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The loginId.
    pub login_id: String,

    /// The Flinks product (an unknown name is refused with the list of known ones).
    #[arg(long, env = "FLINKQ_PRODUCT", default_value_t = Product::DEFAULT)]
    pub product: Product,
}

/// `flinkq enqueue`.
#[derive(Debug, clap::Args)]
pub struct EnqueueArgs {
    /// Batch name (default: generated, like batch-20261124T134501Z-3f2a, and
    /// printed). 1-64 letters, digits, '-', '_' or '.'.
    #[arg(long, env = "FLINKQ_BATCH", value_parser = BATCH_NAME)]
    pub batch: Option<String>,

    /// Read loginIds from this file, one per line ('-' reads stdin). Blank
    /// lines and '#' comments are skipped; CRLF and a UTF-8 BOM are fine.
    #[arg(long, short)]
    pub file: Option<PathBuf>,

    /// Enqueue the valid loginIds even if some are invalid (those are listed).
    #[arg(long)]
    pub skip_invalid: bool,

    /// Claim order: high is claimed before normal, normal before low.
    #[arg(long, env = "FLINKQ_PRIORITY", value_enum, default_value_t = Priority::Normal)]
    pub priority: Priority,

    /// The Flinks product to fetch: one job per (loginId, product), so the
    /// same login may have one unfinished job of each product.
    #[arg(long, env = "FLINKQ_PRODUCT", default_value_t = Product::DEFAULT)]
    pub product: Product,

    /// Print the report as one JSON object (also when interrupted).
    #[arg(long)]
    pub json: bool,

    /// When Redis stops answering mid-enqueue, keep resending the round trip
    /// whose answer was lost (enqueue is idempotent per batch) for this long
    /// before reporting how many logins are confirmed and stopping.
    #[arg(long, env = "FLINKQ_ENQUEUE_RETRY_FOR", default_value = "30s", value_parser = humantime::parse_duration)]
    pub retry_for: std::time::Duration,

    /// LoginIds (UUIDs).
    pub login_ids: Vec<String>,
}

/// `flinkq status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this batch.
    #[arg(long, value_parser = BATCH_NAME)]
    pub batch: Option<String>,

    /// Print one JSON object: queued, authorizing, polling, succeeded, failed, timed_out, cancelled, total.
    #[arg(long)]
    pub json: bool,

    /// Follow the batch live (a progress bar on a terminal, a line per
    /// refresh otherwise) until it is finished; exit 0 if every job
    /// succeeded, 3 if some failed, timed out or were cancelled. Needs --batch.
    #[arg(long, requires = "batch")]
    pub watch: bool,

    /// Refresh period of --watch.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}

/// `flinkq logins`.
#[derive(Debug, clap::Args)]
pub struct LoginsArgs {
    #[command(subcommand)]
    pub action: LoginsAction,
}

/// What to do with the registry.
#[derive(Debug, Subcommand)]
pub enum LoginsAction {
    /// Register loginIds.
    Add {
        /// LoginIds (UUIDs).
        #[arg(required = true)]
        login_ids: Vec<String>,
    },
    /// Unregister loginIds.
    Remove {
        /// LoginIds (UUIDs).
        #[arg(required = true)]
        login_ids: Vec<String>,
    },
    /// List registered loginIds, one per line (or a JSON array).
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Register every loginId of a file (one per line, '-' for stdin).
    Import {
        /// The file.
        #[arg(long, short)]
        file: PathBuf,
        /// Register the valid loginIds even if some are invalid.
        #[arg(long)]
        skip_invalid: bool,
    },
}

/// `flinkq refresh`.
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// Batch name (default: generated and printed). 1-64 letters, digits,
    /// '-', '_' or '.'.
    #[arg(long, env = "FLINKQ_BATCH", value_parser = BATCH_NAME)]
    pub batch: Option<String>,

    /// Claim order of the refresh (nightly refreshes usually run low).
    #[arg(long, env = "FLINKQ_PRIORITY", value_enum, default_value_t = Priority::Normal)]
    pub priority: Priority,

    /// The Flinks product every registered login is enqueued for.
    #[arg(long, env = "FLINKQ_PRODUCT", default_value_t = Product::DEFAULT)]
    pub product: Product,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `flinkq batches`.
#[derive(Debug, clap::Args)]
pub struct BatchesArgs {
    /// Show at most this many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,

    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `flinkq result`.
#[derive(Debug, clap::Args)]
pub struct ResultArgs {
    /// The loginId.
    pub login_id: String,

    /// The Flinks product (an unknown name is refused with the list of known ones).
    #[arg(long, env = "FLINKQ_PRODUCT", default_value_t = Product::DEFAULT)]
    pub product: Product,

    /// Print where the payload is (job, sink, location) as JSON, not the payload.
    #[arg(long)]
    pub meta: bool,
}

/// `flinkq job`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The loginId.
    pub login_id: String,

    /// The Flinks product (an unknown name is refused with the list of known ones).
    #[arg(long, env = "FLINKQ_PRODUCT", default_value_t = Product::DEFAULT)]
    pub product: Product,

    /// Print the job as one JSON object (never its payload or claim token).
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn batch_names_are_plain_and_secret_env_values_hidden() {
        for bad in ["", "a\nb", "\u{1b}[31m", "a b", "{x}"] {
            assert!(
                Cli::try_parse_from(["flinkq", "status", "--batch", bad]).is_err(),
                "{bad:?}"
            );
        }
        assert!(Cli::try_parse_from(["flinkq", "status", "--batch", "nightly-1"]).is_ok());
        fn check(command: &clap::Command) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env().and_then(|e| e.to_str())
                    && ["URL", "KEY", "SECRET", "TOKEN", "WEBHOOK", "PASSWORD"]
                        .iter()
                        .any(|word| env.contains(word))
                {
                    assert!(arg.is_hide_env_values_set(), "{env} may carry a secret");
                }
            }
            command.get_subcommands().for_each(check);
        }
        check(&Cli::command());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["flinkq", "enqueue", "--file", "-", "--skip-invalid"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Enqueue(EnqueueArgs {
                skip_invalid: true,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["flinkq", "--namespace", "a:b", "status"]).is_err());
        let cli = Cli::try_parse_from(["flinkq", "schedule", "--cron", "0 2 * * *"])
            .expect("parse schedule");
        let Command::Schedule(args) = cli.command else {
            panic!("not schedule")
        };
        assert_eq!(
            (args.tz.as_str(), args.priority, args.batch_prefix.as_str()),
            ("UTC", Priority::Low, "nightly")
        );
        assert_eq!(args.products, [Product::DEFAULT]);
        let cli = Cli::try_parse_from([
            "flinkq",
            "schedule",
            "--cron",
            "0 2 * * *",
            "--product",
            "accounts-detail",
            "--product",
            "statements",
        ])
        .expect("parse schedule with products");
        let Command::Schedule(args) = cli.command else {
            panic!("not schedule")
        };
        let names: Vec<&str> = args.products.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["accounts-detail", "statements"]);
        let error = Cli::try_parse_from(["flinkq", "job", "--product", "checking", "x"])
            .expect_err("unknown product");
        let text = error.to_string();
        for product in Product::all() {
            assert!(text.contains(product.as_str()), "{text}");
        }
        assert!(
            Cli::try_parse_from([
                "flinkq",
                "schedule",
                "--cron",
                "* * * * *",
                "--batch-prefix",
                "a b"
            ])
            .is_err()
        );
    }
}
