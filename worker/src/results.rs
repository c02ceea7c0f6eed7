//! The results directory: one `<product>/<loginId>.json` per product and
//! login, written atomically, and `.staged/<jobId>-<first claim ms>.json`,
//! the payload an attempt of one run of a job stored, until that run's
//! commit is applied.
//!
//! The staged link is what lets a later attempt of the *same job* reuse a
//! payload whose commit was lost, without polling Flinks again. It is keyed
//! on the job id, never on the login file's age: a stale worker (of an
//! earlier job of the login, or a fenced attempt) may rewrite
//! `<loginId>.json` at any time, and that must never pass for this job's
//! payload.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::fmt::Display;

use flinkq_shared::{LoginId, Product};
use tokio::io::AsyncWriteExt;

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

/// The directory of staged links, inside the results directory (same file
/// system, so a hard link is possible; hidden, so readers listing
/// `*.json` do not see it).
const STAGED: &str = ".staged";

impl ResultsDir {
    /// Uses `dir` (made absolute), creating it and its parents when missing.
    pub fn create(dir: &Path) -> Result<Self, ResultWriteError> {
        let failed = |source| ResultWriteError {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir.join(STAGED)).map_err(failed)?;
        for product in Product::all() {
            std::fs::create_dir_all(dir.join(product.as_str())).map_err(failed)?;
        }
        // absolute, so the paths recorded in Redis mean the same to a reader
        let dir = std::fs::canonicalize(dir).map_err(failed)?;
        Ok(ResultsDir { dir })
    }

    /// The file of one login's payload of `product`.
    pub fn path_of(&self, product: Product, login: &LoginId) -> PathBuf {
        self.dir
            .join(product.as_str())
            .join(format!("{login}.json"))
    }

    /// The staged link of one job (named by the job id's Display).
    fn staged_of(&self, job: &impl Display) -> PathBuf {
        self.dir.join(STAGED).join(format!("{job}.json"))
    }

    /// Beside the login's file: renamed over it within one directory.
    fn temp_name(&self, product: Product, login: &LoginId) -> PathBuf {
        self.dir.join(product.as_str()).join(format!(
            ".{login}.json.tmp-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ))
    }

    /// A new, empty `product` result of `job` for `login`, written chunk by
    /// chunk into a temp file (created at the first chunk, mode 0600) and
    /// removed unless [`ResultFile::persist`] is reached.
    pub fn begin(&self, product: Product, login: &LoginId, job: &impl Display) -> ResultFile {
        ResultFile {
            tmp: self.temp_name(product, login),
            target: self.path_of(product, login),
            staged: self.staged_of(job),
            file: None,
            persisted: false,
        }
    }

    /// If an earlier attempt of `job` stored its payload (its staged link
    /// is there), publishes it again as the login's file (a stale write may
    /// have replaced it since) and returns the file's path.
    pub async fn stored_by_earlier_attempt(
        &self,
        product: Product,
        login: &LoginId,
        job: &impl Display,
    ) -> Result<Option<PathBuf>, ResultWriteError> {
        let staged = self.staged_of(job);
        let target = self.path_of(product, login);
        let tmp = self.temp_name(product, login);
        let failed = |source| ResultWriteError {
            path: target.clone(),
            source,
        };
        match tokio::fs::hard_link(&staged, &tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(e)),
        }
        if let Err(e) = tokio::fs::rename(&tmp, &target).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(failed(e));
        }
        Ok(Some(target))
    }

    /// Removes staged links last written more than `older_than` ago;
    /// returns how many.
    pub fn sweep_staged(&self, older_than: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now().checked_sub(older_than);
        let mut swept = 0;
        for entry in std::fs::read_dir(self.dir.join(STAGED))? {
            let entry = entry?;
            let old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| cutoff.is_some_and(|cutoff| modified < cutoff));
            if old && std::fs::remove_file(entry.path()).is_ok() {
                swept += 1;
            }
        }
        Ok(swept)
    }

    /// Forgets `job`'s staged payload: its commit was applied (the results
    /// record now points at the login's file) and no attempt needs it.
    pub async fn release(&self, job: &impl Display) {
        let staged = self.staged_of(job);
        match tokio::fs::remove_file(&staged).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(
                %error,
                path = %staged.display(),
                "cannot remove a staged result link; it is harmless but takes disk space"
            ),
        }
    }

    /// Writes `payload` whole as `job`'s result for `login` (see
    /// [`ResultFile`]). Returns the login file's path.
    pub async fn write(
        &self,
        product: Product,
        login: &LoginId,
        job: &impl Display,
        payload: &[u8],
    ) -> Result<PathBuf, ResultWriteError> {
        let mut file = self.begin(product, login, job);
        file.write_chunk(payload).await?;
        file.persist().await
    }
}

/// A result being written: chunks go to a temp file in the results
/// directory. Persisting it fsyncs it, links it as the job's staged
/// payload, then renames it over `<product>/<loginId>.json`, so a reader sees the old
/// file or the new one, never half of one. Dropped unpersisted, the temp
/// file is removed.
#[derive(Debug)]
pub struct ResultFile {
    tmp: PathBuf,
    target: PathBuf,
    staged: PathBuf,
    file: Option<tokio::fs::File>,
    persisted: bool,
}

impl ResultFile {
    fn failed(&self, source: std::io::Error) -> ResultWriteError {
        ResultWriteError {
            path: self.target.clone(),
            source,
        }
    }

    async fn file(&mut self) -> Result<&mut tokio::fs::File, ResultWriteError> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let mut options = tokio::fs::OpenOptions::new();
                options.write(true).create_new(true).mode(0o600);
                let open = || options.open(&self.tmp);
                match open().await {
                    // the product's directory was removed since the start
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if let Some(dir) = self.tmp.parent() {
                            tokio::fs::create_dir_all(dir)
                                .await
                                .map_err(|e| self.failed(e))?;
                        }
                        open().await
                    }
                    opened => opened,
                }
                .map_err(|e| self.failed(e))?
            }
        };
        Ok(self.file.insert(file))
    }

    /// Appends one chunk.
    pub async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), ResultWriteError> {
        let written = self.file().await?.write_all(chunk).await;
        written.map_err(|e| self.failed(e))
    }

    /// Makes the result durable and visible; returns `<product>/<loginId>.json`.
    pub async fn persist(mut self) -> Result<PathBuf, ResultWriteError> {
        let file = self.file().await?;
        let synced = async {
            file.flush().await?;
            file.sync_all().await
        }
        .await;
        synced.map_err(|e| self.failed(e))?;
        self.file = None;
        let (tmp, staged, target) = (self.tmp.clone(), self.staged.clone(), self.target.clone());
        let published = tokio::task::spawn_blocking(move || publish(&tmp, &staged, &target))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        published.map_err(|e| self.failed(e))?;
        self.persisted = true;
        Ok(self.target.clone())
    }
}

impl Drop for ResultFile {
    fn drop(&mut self) {
        if !self.persisted {
            // never created, or already renamed: either way nothing to do
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The staged link first: once `<loginId>.json` is this job's, a lost
/// commit must find the job's payload staged.
fn publish(tmp: &Path, staged: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(staged) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = staged.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::hard_link(tmp, staged)?;
    std::fs::rename(tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const P: Product = Product::DEFAULT;

    fn temp_base(what: &str) -> PathBuf {
        std::env::temp_dir().join(format!("flinkq-{what}-{}", rand::random::<u64>()))
    }

    fn leftovers(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|name| name.to_string_lossy().contains(".tmp-"))
            .collect()
    }

    #[tokio::test]
    async fn staged_links_older_than_any_job_are_swept() {
        let base = temp_base("sweep");
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        dir.write(P, &login, &"old-run", b"{}")
            .await
            .expect("write old");
        dir.write(P, &login, &"live-run", b"{}")
            .await
            .expect("write live");
        let old = base.join(STAGED).join("old-run.json");
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .and_then(|file| file.set_modified(two_hours_ago))
            .expect("age the old link");
        assert_eq!(
            dir.sweep_staged(Duration::from_secs(3600)).expect("sweep"),
            1
        );
        assert!(!old.exists(), "the leftover is gone");
        assert!(
            base.join(STAGED).join("live-run.json").exists(),
            "a live run's link stays"
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    #[tokio::test]
    async fn writes_0600_files_atomically_and_idempotently() {
        let base = temp_base("results");
        let dir = ResultsDir::create(&base.join("nested")).expect("create");
        let login = LoginId::random();
        let job = "job-7";
        let path = dir
            .write(P, &login, &job, b"{\"a\":1}")
            .await
            .expect("write");
        let path2 = dir
            .write(P, &login, &job, b"{\"a\":2}")
            .await
            .expect("rewrite");
        assert_eq!(path, path2);
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"a\":2}");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            path,
            std::fs::canonicalize(base.join("nested"))
                .expect("dir")
                .join(P.as_str())
                .join(format!("{login}.json")),
            "<dir>/<product>/<loginId>.json"
        );
        assert_eq!(
            leftovers(&base.join("nested").join(P.as_str())),
            Vec::<std::ffi::OsString>::new()
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    #[tokio::test]
    async fn a_result_dropped_before_persisting_leaves_nothing() {
        let base = temp_base("dropped");
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        let mut file = dir.begin(P, &login, &"job-1");
        file.write_chunk(b"{\"Invest").await.expect("chunk");
        drop(file);
        assert_eq!(
            leftovers(&base.join(P.as_str())),
            Vec::<std::ffi::OsString>::new()
        );
        assert!(!dir.path_of(P, &login).exists());
        assert_eq!(
            dir.stored_by_earlier_attempt(P, &login, &"job-1")
                .await
                .expect("look"),
            None
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// The fault: a stale worker's late write of `<loginId>.json` (an
    /// earlier job of the login, or a fenced attempt) was taken as the
    /// current job's stored payload because the file was newer than the
    /// job's first claim.
    #[tokio::test]
    async fn stale_result_file_write_is_never_taken_as_another_attempts_result() {
        let base = temp_base("stale");
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        let (earlier_job, this_job) = ("job-1", "job-2");

        // a stale worker of the earlier job writes the login's file late,
        // after this job started: it is not this job's payload
        dir.write(P, &login, &earlier_job, b"{\"from\":\"stale\"}")
            .await
            .expect("stale write");
        dir.release(&earlier_job).await;
        assert_eq!(
            dir.stored_by_earlier_attempt(P, &login, &this_job)
                .await
                .expect("look"),
            None
        );
        // a plain write of the file (no staged link at all) neither
        std::fs::write(dir.path_of(P, &login), b"{\"from\":\"elsewhere\"}").expect("write");
        assert_eq!(
            dir.stored_by_earlier_attempt(P, &login, &this_job)
                .await
                .expect("look"),
            None
        );

        // an attempt of this job stores its payload, its commit is lost,
        // then a stale write replaces the login's file: the next attempt
        // finds this job's payload and publishes it again
        dir.write(P, &login, &this_job, b"{\"from\":\"this job\"}")
            .await
            .expect("write");
        // (workers replace the file by rename, never write into it: the
        // login's file shares its inode with the staged link)
        dir.write(P, &login, &earlier_job, b"{\"from\":\"stale\"}")
            .await
            .expect("stale write");
        let path = dir
            .stored_by_earlier_attempt(P, &login, &this_job)
            .await
            .expect("look")
            .expect("found");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"{\"from\":\"this job\"}"
        );

        // once committed, the staged link is gone
        dir.release(&this_job).await;
        assert_eq!(
            dir.stored_by_earlier_attempt(P, &login, &this_job)
                .await
                .expect("look"),
            None
        );
        assert_eq!(
            leftovers(&base.join(P.as_str())),
            Vec::<std::ffi::OsString>::new()
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    #[tokio::test]
    async fn one_login_has_one_file_per_product_even_if_a_product_dir_was_removed() {
        let base = temp_base("products");
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        std::fs::remove_dir(base.join("statements")).expect("remove a product's dir");
        for product in Product::all() {
            let job = format!("job-{product}");
            dir.write(product, &login, &job, product.as_str().as_bytes())
                .await
                .expect("write");
        }
        for product in Product::all() {
            let path = base.join(product.as_str()).join(format!("{login}.json"));
            assert_eq!(
                std::fs::read(&path).expect("read"),
                product.as_str().as_bytes()
            );
        }
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
