//! Result sinks: where a succeeded job's payload goes, and what its commit
//! records about it.
//!
//! - `files`: `<product>/<loginId>.json` in the results directory, streamed into a
//!   temp file as it arrives and published (atomically) before the commit;
//!   the commit records the file's path.
//! - `redis`: the payload, gzip-compressed, stored by the commit itself in
//!   `result:<loginId>` with a TTL, so it is stored exactly when the job
//!   succeeds. It arrives in a buffer that FLINKQ_MAX_PAYLOAD bounds.
//!
//! Either way the commit adds one `results` stream entry per finished job.

use std::fmt::Display;
use std::time::Duration;

use flinkq_shared::result_record::compress;
use flinkq_shared::{LoginId, Product, ResultRecord};

use crate::flinks::PayloadTarget;
use crate::results::{ResultFile, ResultWriteError, ResultsDir};

/// Which sink, as configured (`FLINKQ_RESULTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResultsKind {
    /// `<product>/<loginId>.json` files in FLINKQ_RESULTS_DIR.
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

/// A payload on its way into a sink: streamed into by the Flinks client,
/// then [`ResultSink::store`]d. Dropped instead, it leaves nothing behind.
#[derive(Debug)]
pub enum StagedPayload {
    /// The results temp file.
    File(ResultFile),
    /// The bytes, for the Redis sink.
    Memory(Vec<u8>),
}

impl PayloadTarget for StagedPayload {
    type Error = ResultWriteError;

    async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), ResultWriteError> {
        match self {
            StagedPayload::File(file) => file.write_chunk(chunk).await,
            StagedPayload::Memory(bytes) => {
                bytes.extend_from_slice(chunk);
                Ok(())
            }
        }
    }
}

impl ResultSink {
    /// An empty `product` payload of `job` for `login`, to stream a 200 into.
    pub fn stage(&self, product: Product, login: &LoginId, job: &impl Display) -> StagedPayload {
        match self {
            ResultSink::Files { dir, .. } => StagedPayload::File(dir.begin(product, login, job)),
            ResultSink::Redis { .. } => StagedPayload::Memory(Vec::new()),
        }
    }

    /// Stores a whole payload as far as this sink does before the commit,
    /// and returns what the commit records.
    pub async fn store(&self, staged: StagedPayload) -> Result<ResultRecord, ResultWriteError> {
        match (self, staged) {
            (ResultSink::Files { ttl, .. }, StagedPayload::File(file)) => {
                let path = file.persist().await?;
                Ok(ResultRecord::File {
                    path: path.display().to_string(),
                    ttl: *ttl,
                })
            }
            (ResultSink::Redis { ttl }, StagedPayload::Memory(payload)) => {
                // compression is CPU work: keep it off the async threads
                let gzip = tokio::task::spawn_blocking(move || compress(&payload))
                    .await
                    .map_err(|join| ResultWriteError {
                        path: "<redis payload>".into(),
                        source: std::io::Error::other(join.to_string()),
                    })?;
                Ok(ResultRecord::Redis { gzip, ttl: *ttl })
            }
            (_, _) => Err(ResultWriteError {
                path: "<staged payload>".into(),
                source: std::io::Error::other("a payload staged for another sink"),
            }),
        }
    }

    /// The record of a payload that an earlier attempt of this same `job`
    /// already stored but could not commit, so the poll need not be
    /// repeated. Keyed on the job id: a login's file written by any other
    /// job or attempt never counts. Only files outlive a lost commit: a
    /// Redis payload is stored by the commit itself.
    pub async fn stored_by_earlier_attempt(
        &self,
        product: Product,
        login: &LoginId,
        job: &impl Display,
    ) -> Result<Option<ResultRecord>, ResultWriteError> {
        match self {
            ResultSink::Files { dir, ttl } => {
                let path = dir.stored_by_earlier_attempt(product, login, job).await?;
                Ok(path.map(|path| ResultRecord::File {
                    path: path.display().to_string(),
                    ttl: *ttl,
                }))
            }
            ResultSink::Redis { .. } => Ok(None),
        }
    }

    /// `job`'s commit was applied: no later attempt needs its staged payload.
    /// Does not wait (see [`ResultsDir::release`]).
    pub fn release(&self, job: &impl Display) {
        if let ResultSink::Files { dir, .. } = self {
            dir.release(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinkq_shared::result_record::decompress;

    async fn stage_whole(sink: &ResultSink, login: &LoginId, payload: &[u8]) -> StagedPayload {
        let mut staged = sink.stage(Product::DEFAULT, login, &"job-1");
        for chunk in payload.chunks(3) {
            staged.write_chunk(chunk).await.expect("chunk");
        }
        staged
    }

    #[tokio::test]
    async fn the_redis_sink_hands_the_commit_a_compressed_payload() {
        let sink = ResultSink::Redis {
            ttl: Duration::from_secs(60),
        };
        let login = LoginId::random();
        let payload = format!("{{\"Login\":\"{login}\",\"Investments\":[]}}").into_bytes();
        let staged = stage_whole(&sink, &login, &payload).await;
        let record = sink.store(staged).await.expect("store");
        let ResultRecord::Redis { gzip, ttl } = &record else {
            panic!("not a redis record: {record:?}");
        };
        assert_eq!(decompress(gzip).expect("gzip"), payload);
        assert_eq!(*ttl, Duration::from_secs(60));
        let earlier = sink
            .stored_by_earlier_attempt(Product::DEFAULT, &login, &"job-1")
            .await;
        assert!(earlier.expect("look").is_none());
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
        let staged = stage_whole(&sink, &login, b"{\"Investments\":[]}").await;
        let record = sink.store(staged).await.expect("store");
        let ResultRecord::File { path, .. } = &record else {
            panic!("not a file record: {record:?}");
        };
        assert!(std::path::Path::new(path).is_absolute(), "{path}");
        assert_eq!(std::fs::read(path).expect("read"), b"{\"Investments\":[]}");
        let earlier = sink
            .stored_by_earlier_attempt(Product::DEFAULT, &login, &"job-1")
            .await;
        assert_eq!(earlier.expect("look"), Some(record));
        let other_job = sink
            .stored_by_earlier_attempt(Product::DEFAULT, &login, &"job-2")
            .await;
        assert_eq!(other_job.expect("look"), None, "another job's payload");
        sink.release(&"job-1");
        let released = sink
            .stored_by_earlier_attempt(Product::DEFAULT, &login, &"job-1")
            .await;
        assert_eq!(released.expect("look"), None);
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("flinkq-sink-{}", rand::random::<u64>()))
    }
}
