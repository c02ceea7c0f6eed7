//! Errors of the Redis store. Each says what failed and what to do.

/// A store operation failed. `Clone`: a group commit's call fails every
/// commit in it with the same error (see `commit_batch.rs`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The Redis URL does not parse.
    #[error(
        "invalid Redis URL {url:?}: {source}; expected redis://[user:password@]host:port[/db] or rediss://… (set FLINKQ_REDIS_URL)"
    )]
    BadUrl {
        /// The URL, password redacted.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// The Redis CA certificate file cannot be read.
    #[error("cannot read the Redis CA certificate {path}: {source} (check FLINKQ_REDIS_CA_FILE)")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why (shared: an I/O error is not `Clone`).
        source: std::sync::Arc<std::io::Error>,
    },
    /// No connection to Redis could be made.
    #[error(
        "cannot reach Redis at {url}: {source}; is redis-server running there? (set FLINKQ_REDIS_URL to point elsewhere)"
    )]
    Unreachable {
        /// The URL, password redacted.
        url: String,
        /// Why.
        source: redis::RedisError,
    },
    /// A command or script failed.
    #[error("Redis {op} failed: {source}")]
    Command {
        /// Which operation.
        op: &'static str,
        /// Why.
        source: redis::RedisError,
    },
    /// A (login, product)'s result pointer names another login or product
    /// (or none) as its owner: its data is not this login's result of this
    /// product and is never shown.
    #[error(
        "the stored result {key} belongs to {}, not to login {login} ({product}): refusing to read it; delete the key (`DEL {key}`) and run a new {product} job for {login}",
        owner.as_deref().map_or("no login (written by an older flinkq?)".to_owned(), |o| format!("login {o}"))
    )]
    ForeignResult {
        /// The pointer's key.
        key: String,
        /// The login asked for.
        login: String,
        /// The product asked for.
        product: crate::Product,
        /// The login and product the pointer names (`<login> (<product>)`,
        /// `no product` when it names none); `None` when it names no login.
        owner: Option<String>,
    },
    /// A write was applied on the primary but fewer replicas than
    /// `FLINKQ_REDIS_WAIT_REPLICAS` confirmed it within
    /// `FLINKQ_REDIS_WAIT_TIMEOUT`: a failover now could lose it, so it is
    /// not acknowledged (the caller retries it, as after a lost answer).
    #[error(
        "Redis {op} not acknowledged by enough replicas: {acked} of {wanted} within {timeout:?}; retried as an unanswered write (check the replicas' link to the primary, or lower FLINKQ_REDIS_WAIT_REPLICAS)"
    )]
    NotReplicated {
        /// Which operation.
        op: &'static str,
        /// Replicas that confirmed it.
        acked: u32,
        /// `FLINKQ_REDIS_WAIT_REPLICAS`.
        wanted: u32,
        /// `FLINKQ_REDIS_WAIT_TIMEOUT`.
        timeout: std::time::Duration,
    },
    /// A commit handed to the commit batcher (see `commit_batch.rs`) got
    /// no answer: its task stopped. The commit may or may not be applied.
    #[error(
        "Redis commit got no answer: the worker's commit batcher stopped (is the worker shutting down?); the step's commit is read back, or the step runs again after its lease"
    )]
    BatcherStopped,
    /// A script answered something flinkq cannot read: a version mismatch or
    /// a key written by something else.
    #[error(
        "unexpected answer from Redis {op}: {detail}; is another program writing flinkq's keys?"
    )]
    Reply {
        /// Which operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl StoreError {
    /// Did Redis fail to answer (connection refused, dropped, timed out)?
    /// Then a write may or may not have been applied, and a retry once
    /// Redis is back is the way to learn; any other error is Redis'
    /// definite answer and retrying it changes nothing.
    pub fn is_unanswered(&self) -> bool {
        match self {
            // applied on a primary that may yet lose it: as good as no answer
            StoreError::Unreachable { .. }
            | StoreError::NotReplicated { .. }
            | StoreError::BatcherStopped => true,
            StoreError::Command { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_unrecoverable_error()
            }
            _ => false,
        }
    }

    /// What kind of failure this is, for `flinkq_redis_errors_total{kind}`.
    pub fn kind(&self) -> RedisErrorKind {
        match self {
            StoreError::NotReplicated { .. } => RedisErrorKind::NotReplicated,
            StoreError::Unreachable { source, .. } | StoreError::Command { source, .. } => {
                RedisErrorKind::of(source)
            }
            _ => RedisErrorKind::Other,
        }
    }

    pub(crate) fn command(op: &'static str) -> impl FnOnce(redis::RedisError) -> StoreError {
        move |source| StoreError::Command { op, source }
    }

    pub(crate) fn reply(op: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Reply {
            op,
            detail: detail.into(),
        }
    }
}

/// A bounded classification of Redis failures (the `kind` label of
/// `flinkq_redis_errors_total`): each points at a different fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedisErrorKind {
    /// `READONLY`: a write reached a replica (a demoted primary).
    Readonly,
    /// `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`: the cluster's slot map
    /// changed under the client (a resharding or a failover); a storm of
    /// them means the client keeps reaching the wrong node.
    Redirect,
    /// No answer in time (`FLINKQ_REDIS_TIMEOUT`).
    Timeout,
    /// Refused, dropped or broken connections.
    Connection,
    /// Applied but not confirmed by `FLINKQ_REDIS_WAIT_REPLICAS` replicas.
    NotReplicated,
    /// Anything else (a script error, an unexpected reply).
    Other,
}

impl RedisErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [RedisErrorKind] = &[
        RedisErrorKind::Readonly,
        RedisErrorKind::Redirect,
        RedisErrorKind::Timeout,
        RedisErrorKind::Connection,
        RedisErrorKind::NotReplicated,
        RedisErrorKind::Other,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisErrorKind::Readonly => "readonly",
            RedisErrorKind::Redirect => "redirect",
            RedisErrorKind::Timeout => "timeout",
            RedisErrorKind::Connection => "connection",
            RedisErrorKind::NotReplicated => "not_replicated",
            RedisErrorKind::Other => "other",
        }
    }

    /// The kind of a Redis client error. A script's error carries the
    /// server's code inside its message, so the text is checked too.
    pub fn of(error: &redis::RedisError) -> RedisErrorKind {
        use redis::ServerErrorKind as S;
        let text = error.to_string();
        let has = |code: &str| text.contains(code);
        if super::topology::is_readonly(error) {
            RedisErrorKind::Readonly
        } else if matches!(
            error.kind(),
            redis::ErrorKind::Server(S::Moved | S::Ask | S::TryAgain | S::ClusterDown)
        ) || has("MOVED")
            || has("ASK ")
            || has("TRYAGAIN")
            || has("CLUSTERDOWN")
        {
            RedisErrorKind::Redirect
        } else if error.is_timeout() {
            RedisErrorKind::Timeout
        } else if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
        {
            RedisErrorKind::Connection
        } else {
            RedisErrorKind::Other
        }
    }
}

impl std::fmt::Display for RedisErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `redis://user:secret@host` -> `redis://user:***@host`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("redis://:s3cret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(redact_url("rediss://u:p@h"), "rediss://u:***@h");
        assert_eq!(redact_url("redis://token@h"), "redis://***@h");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
