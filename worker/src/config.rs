//! The worker's configuration: one clap struct, every flag also an env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flinkq_shared::Policy;
use flinkq_shared::byte_size::parse_byte_size;
use flinkq_shared::redis_args::RedisArgs;
use flinkq_shared::store::RateLimit;
use flinkq_shared::telemetry::LogFormat;
use url::Url;

use crate::error::WorkerError;
use crate::flinks::FlinksUrls;
use crate::flinks::endpoints::check_base;
use crate::result_sink::ResultsKind;
use crate::secret::Secret;
use crate::services::webhook::WebhookUrl;

/// The Flinks toolbox sandbox's banking instance, up to the customer id.
pub const SANDBOX_FLINKS_URL: &str =
    "https://toolbox-api.private.fin.ag/v3/43387ca6-0391-4c82-857d-70d95f087ecb";
/// The Flinks toolbox sandbox's wealth instance, up to the customer id.
pub const SANDBOX_WEALTH_URL: &str =
    "https://toolbox-wealth-api.private.fin.ag/v3/43387ca6-0391-4c82-857d-70d95f087ecb";

/// flinkq-worker: claims Flinks jobs (every product) from Redis and runs
/// them, Authorize → the product's data calls, one persisted step at a time.
#[derive(Debug, Clone, Parser)]
#[command(name = "flinkq-worker", version, about, long_about = None)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Base URL of the Flinks banking instance, up to the customer id
    /// (`https://<instance>-api.private.fin.ag/v3/<customerId>`; default:
    /// the toolbox sandbox). Every banking call is a path below it:
    /// `/BankingServices/Authorize`, `/BankingServices/GetAccountsDetail`,
    /// `/BankingServices/GetAccountsDetailAsync/<RequestId>`, … A trailing
    /// slash is ignored; no query or fragment.
    // URLs may carry credentials (userinfo, tokens): `--help` never prints them.
    #[arg(long, env = "FLINKQ_FLINKS_URL", hide_env_values = true, default_value = SANDBOX_FLINKS_URL, value_parser = parse_base_url)]
    pub flinks_url: Url,

    /// Base URL of the Flinks wealth instance, up to the customer id
    /// (`https://<instance>-wealth-api.private.fin.ag/v3/<customerId>`;
    /// default: the toolbox sandbox). The investments product calls
    /// `/Investments` below it, and authorizes at
    /// `/BankingServices/Authorize` below it. A trailing slash is ignored;
    /// no query or fragment.
    #[arg(long, env = "FLINKQ_WEALTH_URL", hide_env_values = true, default_value = SANDBOX_WEALTH_URL, value_parser = parse_base_url)]
    pub wealth_url: Url,

    /// Optional: full URL of the Authorize endpoint of the products that
    /// authorize on the wealth instance (investments), instead of
    /// `<FLINKQ_WEALTH_URL>/BankingServices/Authorize`. Banking products
    /// always authorize below FLINKQ_FLINKS_URL.
    #[arg(long, env = "FLINKQ_AUTHORIZE_URL", hide_env_values = true, value_parser = parse_http_url)]
    pub authorize_url: Option<Url>,

    /// Optional: full URL of the Investments call, instead of
    /// `<FLINKQ_WEALTH_URL>/Investments`.
    #[arg(long, env = "FLINKQ_INVESTMENTS_URL", hide_env_values = true, value_parser = parse_http_url)]
    pub investments_url: Option<Url>,

    /// Flinks API key, sent as the `flinks-auth-key` header; omitted when unset.
    #[arg(long, env = "FLINKQ_AUTH_KEY", hide_env_values = true)]
    pub auth_key: Option<Secret>,

    /// Read the Flinks API key from this file instead (a mounted secret);
    /// surrounding whitespace is ignored.
    #[arg(
        long,
        env = "FLINKQ_AUTH_KEY_FILE",
        hide_env_values = true,
        conflicts_with = "auth_key"
    )]
    pub auth_key_file: Option<PathBuf>,

    /// Wait between two data calls of one job while the provider answers
    /// 202 (a stage's 200 runs the next stage at once).
    #[arg(long, env = "FLINKQ_POLL_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,

    /// How long a job may poll, counted from its first data call.
    #[arg(long, env = "FLINKQ_POLL_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub poll_timeout: Duration,

    /// Threads of the worker's runtime; default: one per CPU. 1 runs
    /// everything on one thread: the least CPU per step (no wake-ups
    /// between threads), at most one core's worth of steps.
    #[arg(long, env = "FLINKQ_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Steps this process runs at once.
    #[arg(long, env = "FLINKQ_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Where `<product>/<loginId>.json` result files are written (created if
    /// missing).
    #[arg(long, env = "FLINKQ_RESULTS_DIR", default_value = "./results")]
    pub results_dir: PathBuf,

    /// Where result payloads go: `files` (`<product>/<loginId>.json` in
    /// FLINKQ_RESULTS_DIR) or `redis` (gzip-compressed in
    /// `flinkq:{ns}:result:<loginId>`, kept FLINKQ_RESULT_TTL). Either way
    /// every finished job adds one entry to the `flinkq:{ns}:results` stream.
    #[arg(long, env = "FLINKQ_RESULTS", value_enum, default_value_t = ResultsKind::Files)]
    pub results: ResultsKind,

    /// How long a stored result is kept in Redis: the payload (redis sink)
    /// or the pointer to its file (files sink; the file itself stays).
    #[arg(long, env = "FLINKQ_RESULT_TTL", default_value = "7d", value_parser = parse_ttl)]
    pub result_ttl: Duration,

    /// POST each batch completion (JSON: type, event_id, batch, counts) to
    /// this URL, with an `Idempotency-Key` header; retried until a 2xx.
    /// Unset: completions go only to the `events` stream.
    // A webhook URL often embeds its token: `--help` never prints it.
    #[arg(long, env = "FLINKQ_BATCH_WEBHOOK", hide_env_values = true, value_parser = WebhookUrl::parse)]
    pub batch_webhook: Option<WebhookUrl>,

    /// Sign each webhook POST: `X-Flinkq-Signature: sha256=<hex>` is the
    /// HMAC-SHA256 of the body with this secret. Never logged.
    #[arg(
        long,
        env = "FLINKQ_BATCH_WEBHOOK_SECRET",
        hide_env_values = true,
        requires = "batch_webhook"
    )]
    pub batch_webhook_secret: Option<Secret>,

    /// Address of the health endpoint (/healthz, /readyz). Loopback by default.
    #[arg(long, env = "FLINKQ_METRICS_ADDR", default_value = "127.0.0.1:9187")]
    pub metrics_addr: SocketAddr,

    /// Lease of a claimed step: a crashed worker's steps run again after it.
    /// Renewed every third of it while a step runs. At least
    /// FLINKQ_HTTP_TIMEOUT.
    #[arg(long, env = "FLINKQ_LEASE", default_value = "10s", value_parser = parse_lease)]
    pub lease: Duration,

    /// Most jobs claimed in one Redis call.
    #[arg(long, env = "FLINKQ_CLAIM_BATCH", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub claim_batch: u32,

    /// Timeout of one HTTP call to Flinks (connect + answer). At most
    /// FLINKQ_LEASE: a call must not outlive the lease it runs under.
    #[arg(long, env = "FLINKQ_HTTP_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_timeout: Duration,

    /// Largest 200 payload taken from a data call, in bytes (an earlier
    /// stage's payload too, which is checked and dropped): a number with an
    /// optional unit (B, KB, MB, GB in powers of 1000; KiB, MiB, GiB in
    /// powers of 1024). A larger payload fails its job with
    /// PAYLOAD_TOO_LARGE. Bounds the memory of a payload held for the redis
    /// sink; the files sink streams it to disk.
    #[arg(long, env = "FLINKQ_MAX_PAYLOAD", default_value = "64MiB", value_parser = parse_max_payload)]
    pub max_payload: u64,

    /// First retry delay ceiling after a transient failure (doubles per attempt, full jitter).
    #[arg(long, env = "FLINKQ_RETRY_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub retry_base: Duration,

    /// Largest retry delay ceiling.
    #[arg(long, env = "FLINKQ_RETRY_CAP", default_value = "60s", value_parser = humantime::parse_duration)]
    pub retry_cap: Duration,

    /// Consecutive transient failures of one step before the job fails.
    #[arg(long, env = "FLINKQ_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,

    /// How long a job may go without a session, counted from its first
    /// claim: past it, a job whose Authorize keeps answering 202 or "retry
    /// later" ends `timed_out` (AUTHORIZE_TIMEOUT).
    #[arg(long, env = "FLINKQ_AUTHORIZE_TIMEOUT", default_value = "30m", value_parser = parse_authorize_timeout)]
    pub authorize_timeout: Duration,

    /// Sessions one run of a job may obtain: a login whose sessions are lost
    /// (SESSION_EXPIRED) each time fails after this many.
    #[arg(long, env = "FLINKQ_MAX_SESSIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,

    /// Claims of a job without a commit before it fails as a poison pill
    /// (POISON_PILL): a job that crashes its worker (out of memory, a panic)
    /// is not handed to the next one forever.
    #[arg(long, env = "FLINKQ_MAX_CLAIMS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_claims: u32,

    /// How long SIGTERM waits for running steps before exiting anyway (their
    /// leases then expire and the steps run again elsewhere).
    #[arg(long, env = "FLINKQ_SHUTDOWN_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Global limit of calls to Flinks per second, across every worker of
    /// the namespace (a token bucket in Redis). 0 = no limit: Flinks
    /// publishes none, so this is the operator's setting. Otherwise at
    /// least 0.01 (one call every 100 s).
    #[arg(long, env = "FLINKQ_MAX_RPS", default_value_t = 0.0, value_parser = parse_rate)]
    pub max_rps: f64,

    /// Calls allowed at once on top of FLINKQ_MAX_RPS (bucket size).
    #[arg(long, env = "FLINKQ_RATE_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_burst: u32,

    /// How long finished jobs (and their dead letters) are kept before they
    /// are deleted, so Redis memory stays flat over nightly runs.
    #[arg(long, env = "FLINKQ_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// Log format.
    #[arg(long, env = "FLINKQ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// The longest FLINKQ_POLL_TIMEOUT: a job's deadline is its first poll plus
/// this, in milliseconds; a day is far beyond any Flinks run and keeps that
/// sum far from overflowing.
pub const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The longest of the other durations (interval, timeouts, retry delays,
/// lease, grace): beyond a day they are typos, not settings.
const MAX_STEP_DURATION: Duration = Duration::from_secs(24 * 3600);

/// The longest FLINKQ_RETENTION / FLINKQ_RESULT_TTL: ten years; more would
/// overflow Redis' millisecond expiry arithmetic.
const MAX_KEEP: Duration = Duration::from_secs(3650 * 24 * 3600);

/// The smallest non-zero FLINKQ_MAX_RPS: below it the token bucket's refill
/// time overflows (1e-300 calls/s is one call per 1e300 s), and a limit of
/// one call every 100 s is already a stopped worker.
pub const MIN_RATE: f64 = 0.01;

impl WorkerConfig {
    /// Checks what clap's parsers cannot see alone: zero and absurd
    /// durations, rates, and the relations between flags. Run before
    /// anything starts, so a bad setting stops the process with the flag's
    /// name instead of misbehaving at 3 a.m.
    pub fn validate(&self) -> Result<(), WorkerError> {
        let bad = |flag: &'static str, reason: String| Err(WorkerError::BadConfig { flag, reason });
        let within = |flag: &'static str, value: Duration, min: Duration, max: Duration| {
            if value < min {
                bad(
                    flag,
                    format!("{} is too short: use at least {}", show(value), show(min)),
                )
            } else if value > max {
                bad(
                    flag,
                    format!("{} is too long: use at most {}", show(value), show(max)),
                )
            } else {
                Ok(())
            }
        };
        let ms = Duration::from_millis;
        within(
            "--poll-interval (FLINKQ_POLL_INTERVAL)",
            self.poll_interval,
            ms(10),
            MAX_STEP_DURATION,
        )?;
        within(
            "--poll-timeout (FLINKQ_POLL_TIMEOUT)",
            self.poll_timeout,
            ms(10),
            MAX_POLL_TIMEOUT,
        )?;
        within(
            "--http-timeout (FLINKQ_HTTP_TIMEOUT)",
            self.http_timeout,
            ms(10),
            MAX_STEP_DURATION,
        )?;
        within(
            "--retry-base (FLINKQ_RETRY_BASE)",
            self.retry_base,
            ms(1),
            MAX_STEP_DURATION,
        )?;
        within(
            "--retry-cap (FLINKQ_RETRY_CAP)",
            self.retry_cap,
            ms(1),
            MAX_STEP_DURATION,
        )?;
        within(
            "--lease (FLINKQ_LEASE)",
            self.lease,
            ms(300),
            MAX_STEP_DURATION,
        )?;
        within(
            "--shutdown-grace (FLINKQ_SHUTDOWN_GRACE)",
            self.shutdown_grace,
            Duration::ZERO,
            MAX_STEP_DURATION,
        )?;
        within(
            "--retention (FLINKQ_RETENTION)",
            self.retention,
            Duration::from_secs(1),
            MAX_KEEP,
        )?;
        within(
            "--result-ttl (FLINKQ_RESULT_TTL)",
            self.result_ttl,
            Duration::from_secs(1),
            MAX_KEEP,
        )?;
        if self.retry_cap < self.retry_base {
            return bad(
                "--retry-cap (FLINKQ_RETRY_CAP)",
                format!(
                    "{} is below FLINKQ_RETRY_BASE ({}): the cap must be at least the first delay",
                    show(self.retry_cap),
                    show(self.retry_base)
                ),
            );
        }
        if self.lease < self.http_timeout {
            return bad(
                "--lease (FLINKQ_LEASE)",
                format!(
                    "{} is shorter than FLINKQ_HTTP_TIMEOUT ({}): a step's call to Flinks must end within its lease; raise the lease or lower the timeout",
                    show(self.lease),
                    show(self.http_timeout)
                ),
            );
        }
        if self.max_rps != 0.0 && self.max_rps < MIN_RATE {
            return bad(
                "--max-rps (FLINKQ_MAX_RPS)",
                format!(
                    "{:?} is too small: use 0 (no limit) or at least {MIN_RATE} calls per second",
                    self.max_rps
                ),
            );
        }
        Ok(())
    }

    /// The runtime the worker runs on, as FLINKQ_WORKER_THREADS says.
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self.worker_threads {
            Some(1) => tokio::runtime::Builder::new_current_thread(),
            Some(threads) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(usize::from(threads));
                builder
            }
            None => tokio::runtime::Builder::new_multi_thread(),
        };
        builder.enable_all().build()
    }

    /// Where each Flinks call goes.
    pub fn flinks_urls(&self) -> FlinksUrls {
        FlinksUrls {
            banking: self.flinks_url.clone(),
            wealth: self.wealth_url.clone(),
            wealth_authorize: self.authorize_url.clone(),
            investments: self.investments_url.clone(),
        }
    }

    /// The Flinks API key, from FLINKQ_AUTH_KEY or FLINKQ_AUTH_KEY_FILE.
    pub fn resolved_auth_key(&self) -> Result<Option<Secret>, WorkerError> {
        let key = Secret::from_value_or_file(self.auth_key.as_ref(), self.auth_key_file.as_deref())
            .map_err(|error| WorkerError::AuthKey {
                reason: error.to_string(),
            })?;
        // It travels as a header: refused here, at start and before Redis,
        // rather than as 401s later.
        if let Some(key) = &key {
            crate::flinks::auth_key_header(key).map_err(|error| WorkerError::AuthKey {
                reason: error.to_string(),
            })?;
        }
        Ok(key)
    }

    /// The global rate limit.
    pub fn rate_limit(&self) -> RateLimit {
        RateLimit {
            per_second: self.max_rps,
            burst: self.rate_burst,
        }
    }

    /// The state machine's timing policy.
    pub fn policy(&self) -> Policy {
        Policy {
            poll_interval: self.poll_interval,
            poll_timeout: self.poll_timeout,
            retry_base: self.retry_base,
            retry_cap: self.retry_cap,
            max_attempts: self.max_attempts,
            authorize_timeout: self.authorize_timeout,
            max_sessions: self.max_sessions,
            max_claims: self.max_claims,
        }
    }
}

fn show(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(duration)
}

fn parse_http_url(input: &str) -> Result<Url, String> {
    let url = Url::parse(input).map_err(|e| format!("{input:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(format!("{input:?} is not an http(s) URL with a host")),
    }
}

/// An instance base: http(s), a host, no query or fragment.
fn parse_base_url(input: &str) -> Result<Url, String> {
    let url = parse_http_url(input)?;
    check_base(&url).map_err(|why| format!("{input:?}: {why}"))?;
    Ok(url)
}

fn parse_rate(input: &str) -> Result<f64, String> {
    match input.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!(
            "{input:?} is not a rate: use calls per second, e.g. 50 or 0.5 (0 = no limit)"
        )),
    }
}

fn parse_ttl(input: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(input).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) {
        return Err(format!(
            "result TTL {input} is too short: use at least 1s (e.g. 7d)"
        ));
    }
    Ok(ttl)
}

fn parse_authorize_timeout(input: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(input).map_err(|e| e.to_string())?;
    if timeout.is_zero() {
        return Err(format!(
            "authorize timeout {input} would time every job out at its first claim: use e.g. 30m"
        ));
    }
    Ok(timeout)
}

/// `FLINKQ_MAX_PAYLOAD`: zero is refused (no payload would ever be taken).
fn parse_max_payload(input: &str) -> Result<u64, String> {
    parse_byte_size(
        input,
        1,
        "zero would take no payload at all; use a size such as 64MiB",
    )
}

fn parse_lease(input: &str) -> Result<Duration, String> {
    let lease = humantime::parse_duration(input).map_err(|e| e.to_string())?;
    if lease < Duration::from_millis(300) {
        return Err(format!("lease {input} is too short: use at least 300ms"));
    }
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_defaults_match_the_readme() {
        WorkerConfig::command().debug_assert();
        let config = WorkerConfig::try_parse_from(["flinkq-worker"]).expect("defaults parse");
        assert_eq!(config.poll_interval, Duration::from_secs(10));
        assert_eq!(config.poll_timeout, Duration::from_secs(1800));
        assert_eq!(config.metrics_addr.to_string(), "127.0.0.1:9187");
        assert_eq!(config.redis.redis_url, "redis://127.0.0.1:6379");
        assert!(config.auth_key.is_none());
        assert_eq!(config.policy().authorize_timeout, Duration::from_secs(1800));
        assert_eq!(
            (config.policy().max_sessions, config.policy().max_claims),
            (10, 5)
        );
        assert_eq!(config.max_payload, 64 * 1024 * 1024);
        assert_eq!(config.flinks_url.as_str(), SANDBOX_FLINKS_URL);
        assert_eq!(config.wealth_url.as_str(), SANDBOX_WEALTH_URL);
        assert!(config.authorize_url.is_none() && config.investments_url.is_none());
        let urls = config.flinks_urls();
        let detail: flinkq_shared::Product = "accounts-detail".parse().expect("known");
        assert_eq!(
            urls.authorize(detail).as_str(),
            format!("{SANDBOX_FLINKS_URL}/BankingServices/Authorize")
        );
    }

    #[test]
    fn base_urls_with_a_query_or_fragment_are_refused_naming_the_flag() {
        let parse = |args: &[&str]| {
            let mut all = vec!["w"];
            all.extend_from_slice(args);
            WorkerConfig::try_parse_from(all)
        };
        for (flag, value, why) in [
            ("--flinks-url", "https://x.example/v3/c?key=1", "query"),
            ("--wealth-url", "https://x.example/v3/c#top", "fragment"),
            ("--flinks-url", "ftp://x.example/v3/c", "http(s)"),
            ("--wealth-url", "not a url", "not a URL"),
        ] {
            let err = parse(&[flag, value]).expect_err("refused").to_string();
            assert!(
                err.contains(flag) && err.contains(why),
                "{flag} {value}: {err}"
            );
        }
        let config =
            parse(&["--flinks-url", "http://127.0.0.1:1/v3/c/"]).expect("a trailing slash");
        assert_eq!(config.flinks_url.as_str(), "http://127.0.0.1:1/v3/c/");
    }

    #[test]
    fn byte_sizes_take_units_and_refuse_zero() {
        let parse = |v: &str| WorkerConfig::try_parse_from(["w", "--max-payload", v]);
        let size = |v: &str| parse(v).expect("parse").max_payload;
        assert_eq!(size("1048576"), 1 << 20);
        assert_eq!(size("1MiB"), 1 << 20);
        assert_eq!(size("2 mb"), 2_000_000);
        assert_eq!(size("512KiB"), 512 * 1024);
        assert_eq!(size("1GB"), 1_000_000_000);
        let err = parse("0").expect_err("zero");
        assert!(err.to_string().contains("--max-payload"), "{err}");
        assert!(err.to_string().contains("zero"), "{err}");
        assert!(parse("0MiB").is_err());
        assert!(parse("lots").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999GiB").is_err());
    }

    #[test]
    fn one_worker_thread_is_a_single_threaded_runtime_and_zero_is_refused() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |args: &[&str]| {
            let config = WorkerConfig::try_parse_from(args).expect("parse");
            let runtime = config.runtime().expect("runtime");
            (
                runtime.handle().runtime_flavor(),
                runtime.metrics().num_workers(),
            )
        };
        assert_eq!(
            flavor(&["w", "--worker-threads", "1"]),
            (RuntimeFlavor::CurrentThread, 1)
        );
        assert_eq!(
            flavor(&["w", "--worker-threads", "3"]),
            (RuntimeFlavor::MultiThread, 3)
        );
        assert_eq!(flavor(&["w"]).0, RuntimeFlavor::MultiThread);
        assert!(WorkerConfig::try_parse_from(["w", "--worker-threads", "0"]).is_err());
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        let err = WorkerConfig::try_parse_from(["w", "--authorize-url", "ftp://x"])
            .expect_err("bad scheme");
        assert!(err.to_string().contains("http(s)"), "{err}");
        let err = WorkerConfig::try_parse_from(["w", "--poll-interval", "ten"])
            .expect_err("bad duration");
        assert!(err.to_string().contains("--poll-interval"), "{err}");
        assert!(WorkerConfig::try_parse_from(["w", "--lease", "10ms"]).is_err());
        assert!(WorkerConfig::try_parse_from(["w", "--concurrency", "0"]).is_err());
        let err = WorkerConfig::try_parse_from(["w", "--results", "s3"]).expect_err("bad sink");
        assert!(err.to_string().contains("files, redis"), "{err}");
        assert!(WorkerConfig::try_parse_from(["w", "--result-ttl", "0s"]).is_err());
        let err = WorkerConfig::try_parse_from(["w", "--authorize-timeout", "0s"])
            .expect_err("zero authorize timeout");
        assert!(err.to_string().contains("--authorize-timeout"), "{err}");
        assert!(WorkerConfig::try_parse_from(["w", "--max-sessions", "0"]).is_err());
        assert!(WorkerConfig::try_parse_from(["w", "--max-claims", "0"]).is_err());
    }

    #[test]
    fn the_auth_key_comes_from_a_file_trimmed() {
        let path = std::env::temp_dir().join(format!("flinkq-key-{}", std::process::id()));
        std::fs::write(&path, "  filekey\n").expect("write");
        let arg = path.to_str().expect("utf-8");
        let config = WorkerConfig::try_parse_from(["w", "--auth-key-file", arg]).expect("parse");
        assert_eq!(
            config
                .resolved_auth_key()
                .expect("read")
                .map(|k| k.expose().to_owned()),
            Some("filekey".into())
        );
        std::fs::write(&path, "\n").expect("write");
        assert!(
            config.resolved_auth_key().is_err(),
            "an empty key file is an error"
        );
        // two keys on two lines: no header can carry it, so it is refused
        // at start, not dropped from every call
        std::fs::write(&path, "old-key\nnew-key\n").expect("write");
        let refused = config.resolved_auth_key().expect_err("a line break inside");
        assert!(
            refused.to_string().contains("control character")
                && !refused.to_string().contains("key\n"),
            "{refused}"
        );
        std::fs::remove_file(&path).expect("cleanup");
        let missing = WorkerConfig::try_parse_from(["w", "--auth-key-file", "/nonexistent/key"])
            .expect("parse");
        let err = missing.resolved_auth_key().expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/key"), "{err}");
        assert!(
            WorkerConfig::try_parse_from(["w", "--auth-key", "a", "--auth-key-file", arg]).is_err()
        );
    }

    #[test]
    fn defaults_pass_validation_and_bad_values_name_their_flag() {
        let parse = |args: &[&str]| {
            let mut all = vec!["w"];
            all.extend_from_slice(args);
            WorkerConfig::try_parse_from(all).expect("parse")
        };
        parse(&[]).validate().expect("the defaults are consistent");
        for (args, flag) in [
            (&["--poll-interval", "0s"][..], "--poll-interval"),
            (&["--http-timeout", "0s"][..], "--http-timeout"),
            (&["--poll-timeout", "100years"][..], "--poll-timeout"),
            (&["--retry-base", "0s"][..], "--retry-base"),
            (&["--retry-cap", "0s"][..], "--retry-cap"),
            (
                &["--retry-base", "10s", "--retry-cap", "5s"][..],
                "--retry-cap",
            ),
            (&["--lease", "5s", "--http-timeout", "6s"][..], "--lease"),
            (&["--max-rps", "1e-300"][..], "--max-rps"),
        ] {
            let err = parse(args).validate().expect_err("refused");
            assert!(err.to_string().contains(flag), "{args:?}: {err}");
        }
        parse(&["--max-rps", "0"]).validate().expect("0 = no limit");
        parse(&["--max-rps", "0.01"])
            .validate()
            .expect("the minimum");
    }

    #[test]
    fn the_auth_key_is_not_in_debug_output() {
        let config = WorkerConfig::try_parse_from(["w", "--auth-key", "topsecret"]).expect("parse");
        assert!(!format!("{config:?}").contains("topsecret"));
    }
}
