//! The results directory: one `<loginId>.json` per login, written atomically.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flinkq_shared::LoginId;

/// Writing a result failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write result file {path}: {source}; check the results directory (FLINKQ_RESULTS_DIR) exists, is writable and has space"
)]
pub struct ResultWriteError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Where result payloads go.
#[derive(Debug, Clone)]
pub struct ResultsDir {
    dir: PathBuf,
}

impl ResultsDir {
    /// Uses `dir` (made absolute), creating it and its parents when missing.
    pub fn create(dir: &Path) -> Result<Self, ResultWriteError> {
        let failed = |source| ResultWriteError {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        // absolute, so the paths recorded in Redis mean the same to a reader
        let dir = std::fs::canonicalize(dir).map_err(failed)?;
        Ok(ResultsDir { dir })
    }

    /// The file of one login.
    pub fn path_of(&self, login: &LoginId) -> PathBuf {
        self.dir.join(format!("{login}.json"))
    }

    /// Was the login's result file written at or after `since_ms` (ms since
    /// the epoch)? Only a job of that login writes it, and a login has one
    /// unfinished job at a time: a file newer than the job's first claim is
    /// that job's payload, stored by an attempt whose commit was lost.
    pub fn written_since(&self, login: &LoginId, since_ms: u64) -> bool {
        std::fs::metadata(self.path_of(login))
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|age| age.as_millis() >= u128::from(since_ms))
    }

    /// Writes `payload` as the login's result: a temp file (mode 0600) in the
    /// same directory, fsynced, then renamed over the final name, so a reader
    /// sees the old file or the new one, never half of one. Idempotent: a step
    /// that runs twice writes the same name twice.
    pub async fn write(
        &self,
        login: &LoginId,
        payload: Vec<u8>,
    ) -> Result<PathBuf, ResultWriteError> {
        let path = self.path_of(login);
        let tmp = self.dir.join(format!(
            ".{login}.json.tmp-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let target = path.clone();
        let result = tokio::task::spawn_blocking(move || {
            let written = write_atomically(&tmp, &target, &payload);
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        result
            .map(|()| path.clone())
            .map_err(|source| ResultWriteError { path, source })
    }
}

fn write_atomically(tmp: &Path, target: &Path, payload: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    file.write_all(payload)?;
    file.sync_all()?;
    std::fs::rename(tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn writes_0600_files_atomically_and_idempotently() {
        let base = std::env::temp_dir().join(format!("flinkq-results-{}", rand::random::<u64>()));
        let dir = ResultsDir::create(&base.join("nested")).expect("create");
        let login = LoginId::random();
        let path = dir
            .write(&login, b"{\"a\":1}".to_vec())
            .await
            .expect("write");
        let path2 = dir
            .write(&login, b"{\"a\":2}".to_vec())
            .await
            .expect("rewrite");
        assert_eq!(path, path2);
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"a\":2}");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(base.join("nested"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    #[tokio::test]
    async fn a_result_counts_only_if_written_since_the_job_started() {
        let base = std::env::temp_dir().join(format!("flinkq-since-{}", rand::random::<u64>()));
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        let now_ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        assert!(!dir.written_since(&login, 0), "no file yet");
        let before = now_ms() - 1_000;
        dir.write(&login, b"{}".to_vec()).await.expect("write");
        assert!(dir.written_since(&login, before));
        assert!(
            !dir.written_since(&login, now_ms() + 60_000),
            "an older file belongs to an earlier job"
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
