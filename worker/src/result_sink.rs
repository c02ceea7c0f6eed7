//! Result sinks: where a succeeded job's payload goes, and what its commit
//! records about it.
//!
//! - `files`: `<loginId>.json` in the results directory, written (atomically)
//!   before the commit; the commit records the file's path.
//! - `redis`: the payload, gzip-compressed, stored by the commit itself in
//!   `result:<loginId>` with a TTL, so it is stored exactly when the job
//!   succeeds.
//!
//! Either way the commit adds one `results` stream entry per finished job.

use std::time::Duration;

use flinkq_shared::result_record::compress;
use flinkq_shared::{LoginId, ResultRecord};

use crate::results::{ResultWriteError, ResultsDir};

/// Which sink, as configured (`FLINKQ_RESULTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsKind {
    /// `<loginId>.json` files in FLINKQ_RESULTS_DIR.
    Files,
    /// Compressed payloads in Redis, with FLINKQ_RESULT_TTL.
    Redis,
}

/// A configured sink.
#[derive(Debug, Clone)]
pub enum ResultSink {
    /// Files in a directory.
    Files {
        /// The directory.
        dir: ResultsDir,
        /// How long the pointer to a file is kept in Redis.
        ttl: Duration,
    },
    /// Payloads in Redis.
    Redis {
        /// How long a payload is kept.
        ttl: Duration,
    },
}

impl ResultSink {
    /// Stores `payload` as far as this sink does before the commit, and
    /// returns what the commit records.
    pub async fn store(
        &self,
        login: &LoginId,
        payload: Vec<u8>,
    ) -> Result<ResultRecord, ResultWriteError> {
        match self {
            ResultSink::Files { dir, ttl } => {
                let path = dir.write(login, payload).await?;
                Ok(ResultRecord::File {
                    path: path.display().to_string(),
                    ttl: *ttl,
                })
            }
            ResultSink::Redis { ttl } => {
                // compression is CPU work: keep it off the async threads
                let gzip = tokio::task::spawn_blocking(move || compress(&payload))
                    .await
                    .map_err(|join| ResultWriteError {
                        path: "<redis payload>".into(),
                        source: std::io::Error::other(join.to_string()),
                    })?;
                Ok(ResultRecord::Redis { gzip, ttl: *ttl })
            }
        }
    }

    /// The record of a payload that an earlier attempt of this job (first
    /// claimed at `since_ms`) already stored but could not commit, so the
    /// poll need not be repeated. Only files outlive a lost commit: a Redis
    /// payload is stored by the commit itself.
    pub fn stored_by_earlier_attempt(
        &self,
        login: &LoginId,
        since_ms: u64,
    ) -> Option<ResultRecord> {
        match self {
            ResultSink::Files { dir, ttl } if dir.written_since(login, since_ms) => {
                Some(ResultRecord::File {
                    path: dir.path_of(login).display().to_string(),
                    ttl: *ttl,
                })
            }
            ResultSink::Files { .. } | ResultSink::Redis { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinkq_shared::result_record::decompress;

    #[tokio::test]
    async fn the_redis_sink_hands_the_commit_a_compressed_payload() {
        let sink = ResultSink::Redis {
            ttl: Duration::from_secs(60),
        };
        let login = LoginId::random();
        let payload = format!("{{\"Login\":\"{login}\",\"Investments\":[]}}").into_bytes();
        let record = sink.store(&login, payload.clone()).await.expect("store");
        let ResultRecord::Redis { gzip, ttl } = &record else {
            panic!("not a redis record: {record:?}");
        };
        assert_eq!(decompress(gzip).expect("gzip"), payload);
        assert_eq!(*ttl, Duration::from_secs(60));
        assert!(sink.stored_by_earlier_attempt(&login, 0).is_none());
    }

    #[tokio::test]
    async fn the_files_sink_records_the_absolute_path_it_wrote() {
        let base = tempfile_dir();
        let dir = ResultsDir::create(&base).expect("dir");
        let sink = ResultSink::Files {
            dir,
            ttl: Duration::from_secs(5),
        };
        let login = LoginId::random();
        let record = sink.store(&login, b"{}".to_vec()).await.expect("store");
        let ResultRecord::File { path, .. } = &record else {
            panic!("not a file record: {record:?}");
        };
        assert!(std::path::Path::new(path).is_absolute(), "{path}");
        assert_eq!(std::fs::read(path).expect("read"), b"{}");
        assert_eq!(sink.stored_by_earlier_attempt(&login, 0), Some(record));
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("flinkq-sink-{}", rand::random::<u64>()))
    }
}
