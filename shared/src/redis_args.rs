//! The Redis flags both binaries share.

use std::time::Duration;

use clap::Args;

use crate::store::StoreConfig;

/// Where flinkq keeps its state.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis URL: redis://[user:password@]host:port[/db], or rediss:// for TLS.
    // The URL may carry a password: `--help` must never print its env value.
    #[arg(
        long,
        env = "FLINKQ_REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// Namespace: jobs, counters and leases of different namespaces never meet.
    /// Letters, digits, '-', '_' and '.' only.
    #[arg(long, env = "FLINKQ_NAMESPACE", default_value = "default", value_parser = parse_namespace)]
    pub namespace: String,

    /// PEM file of the CA that signed Redis' TLS certificate, for rediss://
    /// URLs when the system trust store does not know it.
    #[arg(long, env = "FLINKQ_REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,

    /// Give up on one Redis answer after this long (humantime, e.g. 5s).
    #[arg(long, env = "FLINKQ_REDIS_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub redis_timeout: Duration,
}

impl RedisArgs {
    /// The store configuration these flags describe.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            response_timeout: self.redis_timeout,
            ca_file: self.redis_ca_file.clone(),
            ..StoreConfig::new(&self.redis_url, &self.namespace)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::parse_namespace;

    #[test]
    fn namespaces_cannot_break_the_hash_tag() {
        assert!(parse_namespace("nightly-2026.11").is_ok());
        for bad in ["", "a}b", "a:b", "a b", "x{"] {
            assert!(parse_namespace(bad).is_err(), "{bad:?}");
        }
    }
}
