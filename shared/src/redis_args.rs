//! The Redis flags both binaries share.

use std::time::Duration;

use clap::Args;

use crate::store::{RedisMode, StoreConfig};

/// Where flinkq keeps its state.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS.
    /// With --redis-mode sentinel it lists the Sentinels, with cluster the
    /// seed nodes: redis://[user:password@]h1:p1,h2:p2,h3:p3[/db]
    /// (credentials, db and TLS apply to the Redis nodes, not the Sentinels).
    // The URL may carry a password: `--help` must never print its env value.
    #[arg(
        long,
        env = "FLINKQ_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// How to read FLINKQ_REDIS_URL: standalone (one node), sentinel (ask the
    /// Sentinels for the primary, again after a failover) or cluster (a
    /// Redis Cluster; each namespace lives in one hash slot).
    #[arg(long, env = "FLINKQ_REDIS_MODE", default_value = "standalone", value_parser = parse_redis_mode)]
    pub redis_mode: RedisMode,

    /// The Sentinels' name of the primary (--redis-mode sentinel only).
    #[arg(long, env = "FLINKQ_REDIS_SENTINEL_MASTER", default_value = "mymaster")]
    pub redis_sentinel_master: String,

    /// Namespace: jobs, counters and leases of different namespaces never meet.
    /// Letters, digits, '-', '_' and '.' only.
    #[arg(long, env = "FLINKQ_NAMESPACE", default_value = "default", value_parser = PlainName::new("a namespace", "nightly"))]
    pub namespace: String,

    /// PEM file of the CA that signed Redis' TLS certificate, for rediss://
    /// URLs when the system trust store does not know it.
    #[arg(long, env = "FLINKQ_REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,

    /// Give up on one Redis answer after this long (humantime, e.g. 5s).
    #[arg(long, env = "FLINKQ_REDIS_TIMEOUT", default_value = "5s", value_parser = parse_redis_timeout)]
    pub redis_timeout: Duration,

    /// Replicas that must confirm each commit and enqueue (Redis `WAIT`)
    /// before it counts as done; 0 (the default) does not wait. A commit not
    /// confirmed within --redis-wait-timeout is retried like a commit whose
    /// answer was lost, so an acknowledged transition survives a failover.
    #[arg(long, env = "FLINKQ_REDIS_WAIT_REPLICAS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub redis_wait_replicas: u32,

    /// How long one `WAIT` may block (humantime, e.g. 1s).
    #[arg(long, env = "FLINKQ_REDIS_WAIT_TIMEOUT", default_value = "1s", value_parser = parse_wait_timeout)]
    pub redis_wait_timeout: Duration,
}

impl RedisArgs {
    /// The store configuration these flags describe.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            response_timeout: self.redis_timeout,
            ca_file: self.redis_ca_file.clone(),
            mode: self.redis_mode,
            sentinel_master: self.redis_sentinel_master.clone(),
            wait_replicas: self.redis_wait_replicas,
            wait_timeout: self.redis_wait_timeout,
            ..StoreConfig::new(&self.redis_url, &self.namespace)
        }
    }
}

fn parse_redis_mode(input: &str) -> Result<RedisMode, String> {
    input.parse()
}

/// One Redis answer's timeout: zero would fail every command, and more
/// than a minute would hold a step (and its lease) hostage to a dead Redis.
fn parse_redis_timeout(input: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(input).map_err(|e| e.to_string())?;
    if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(60) {
        return Err(format!(
            "{input} is out of range: use between 10ms and 60s (e.g. 5s)"
        ));
    }
    Ok(timeout)
}

/// One `WAIT`'s bound: zero would confirm nothing (Redis reads 0 as
/// "forever"), and past 30 s a commit would hold its lease hostage to a
/// replica that is gone.
fn parse_wait_timeout(input: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(input).map_err(|e| e.to_string())?;
    if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(30) {
        return Err(format!(
            "{input} is out of range: use between 1ms and 30s (e.g. 1s)"
        ));
    }
    Ok(timeout)
}

/// Namespaces become part of every key and sit inside a `{hash tag}`: braces,
/// colons, spaces and control characters would break either.
pub fn parse_namespace(input: &str) -> Result<String, String> {
    plain_name(input, "a namespace")
}

/// `input` if it is 1-64 letters, digits, '-', '_' or '.' (safe inside keys
/// and hash tags); otherwise why not, calling it `what`.
pub fn plain_name(input: &str, what: &str) -> Result<String, String> {
    let valid = !input.is_empty()
        && input.len() <= 64
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(input.to_owned())
    } else {
        Err(format!(
            "{input:?} is not {what}: use 1-64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A clap value parser for plain names (namespaces, batch names): the
/// [`plain_name`] check, with an error that never shows the refused value
/// raw. clap's own errors repeat the value as typed, so a name carrying an
/// escape sequence or a newline would reach the operator's terminal; here it
/// is quoted with escapes.
#[derive(Debug, Clone, Copy)]
pub struct PlainName {
    what: &'static str,
    example: &'static str,
    max_len: usize,
}

impl PlainName {
    /// Names called `what` in errors, with `example` as a valid one.
    pub const fn new(what: &'static str, example: &'static str) -> Self {
        PlainName {
            what,
            example,
            max_len: 64,
        }
    }

    /// Shorter than 64 (a prefix that gets a suffix appended).
    pub const fn max_len(self, max_len: usize) -> Self {
        PlainName { max_len, ..self }
    }

    /// `input` if valid; otherwise why not and what to use.
    pub fn check(&self, input: &str) -> Result<String, String> {
        let name =
            plain_name(input, self.what).map_err(|e| format!("{e}, e.g. {}", self.example))?;
        if name.len() > self.max_len {
            return Err(format!(
                "{input:?} is too long for {}: use at most {} characters, e.g. {}",
                self.what, self.max_len, self.example
            ));
        }
        Ok(name)
    }
}

impl clap::builder::TypedValueParser for PlainName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let checked = match value.to_str() {
            Some(input) => self.check(input),
            None => Err(format!("{value:?} is not {}: not UTF-8", self.what)),
        };
        checked.map_err(|reason| {
            let flag = arg
                .and_then(clap::Arg::get_long)
                .map_or_else(|| "value".to_owned(), |long| format!("--{long}"));
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid {flag}: {reason}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{PlainName, parse_namespace, parse_redis_timeout};
    use std::time::Duration;

    #[test]
    fn refused_names_are_never_echoed_raw() {
        use clap::builder::TypedValueParser;
        let cmd = clap::Command::new("t");
        let err = PlainName::new("a batch name", "nightly")
            .parse_ref(&cmd, None, std::ffi::OsStr::new("a\u{1b}[2Jb\nc"))
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains("b\nc"),
            "{text:?}"
        );
        assert!(text.contains("is not a batch name"), "{text}");
        assert!(PlainName::new("p", "x").max_len(3).check("abcd").is_err());
    }

    #[test]
    fn a_zero_or_huge_redis_timeout_is_refused() {
        assert!(parse_redis_timeout("0s").is_err());
        assert!(parse_redis_timeout("2h").is_err());
        assert_eq!(parse_redis_timeout("300ms"), Ok(Duration::from_millis(300)));
    }

    #[test]
    fn a_zero_or_huge_wait_timeout_is_refused() {
        assert!(super::parse_wait_timeout("0s").is_err());
        assert!(super::parse_wait_timeout("1m").is_err());
        assert_eq!(
            super::parse_wait_timeout("250ms"),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn namespaces_cannot_break_the_hash_tag() {
        assert!(parse_namespace("nightly-2026.11").is_ok());
        for bad in ["", "a}b", "a:b", "a b", "x{"] {
            assert!(parse_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
