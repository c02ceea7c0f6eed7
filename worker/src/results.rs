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

use crate::result_writer::{Body, Publish, ResultWriter, create_temp};

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
    /// This process' id, in temp file names (read once: each
    /// `std::process::id()` is a system call).
    pid: u32,
    /// Every file operation of the hot path runs on this one thread (see
    /// [`crate::result_writer`]).
    writer: ResultWriter,
}

/// The directory of staged links, inside the results directory (same file
/// system, so a hard link is possible; hidden, so readers listing
/// `*.json` do not see it).
const STAGED: &str = ".staged";

/// A payload up to this size is kept in memory until it is whole, then
/// written by the results writer in one go; a larger one is streamed into
/// its temp file as it arrives. Bounds the sink's memory to this much per
/// running step (FLINKQ_CONCURRENCY), whatever FLINKQ_MAX_PAYLOAD allows.
pub const IN_MEMORY_UP_TO: usize = 64 * 1024;

impl ResultsDir {
    /// Uses `dir` (made absolute), creating it and its parents when missing,
    /// and starts its writer thread.
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
        let writer = ResultWriter::start(&dir).map_err(failed)?;
        Ok(ResultsDir {
            dir,
            pid: std::process::id(),
            writer,
        })
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
            self.pid,
            rand::random::<u64>()
        ))
    }

    /// A new, empty `product` result of `job` for `login`, written chunk by
    /// chunk (in memory up to [`IN_MEMORY_UP_TO`], then into a temp file of
    /// mode 0600), and removed unless [`ResultFile::persist`] is reached.
    /// Its paths are named only once needed: most polls answer "pending"
    /// and drop it unused.
    pub fn begin(&self, product: Product, login: &LoginId, job: &impl Display) -> ResultFile {
        ResultFile {
            dir: self.clone(),
            product,
            login: *login,
            job: job.to_string(),
            tmp: None,
            memory: Vec::new(),
            file: None,
            handed_over: false,
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
        let target = self.path_of(product, login);
        let reused = self
            .writer
            .reuse(
                self.staged_of(job),
                self.temp_name(product, login),
                target.clone(),
            )
            .await;
        match reused {
            Ok(true) => Ok(Some(target)),
            Ok(false) => Ok(None),
            Err(source) => Err(ResultWriteError {
                path: target,
                source,
            }),
        }
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
    /// Does not wait: the writer removes the link in its next batch.
    pub fn release(&self, job: &impl Display) {
        self.writer.release(self.staged_of(job));
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

/// A result being written: chunks are kept in memory, or go to a temp file
/// in the results directory once too large. Persisting it makes it durable,
/// links it as the job's staged payload, then renames it over
/// `<product>/<loginId>.json`, so a reader sees the old file or the new
/// one, never half of one. Dropped unpersisted, the temp file (if any) is
/// removed.
#[derive(Debug)]
pub struct ResultFile {
    dir: ResultsDir,
    product: Product,
    login: LoginId,
    /// The job's run key, naming its staged link.
    job: String,
    /// The temp file's path, once named (it exists, or may: its creation
    /// was tried, or it was handed to the writer to create).
    tmp: Option<PathBuf>,
    /// The payload so far, while it fits in [`IN_MEMORY_UP_TO`].
    memory: Vec<u8>,
    /// The temp file, once the payload outgrew memory (boxed: rare, and
    /// large beside the rest).
    file: Option<Box<tokio::fs::File>>,
    /// Persisting handed the temp file to the writer: it is the writer's to
    /// remove on a failure.
    handed_over: bool,
}

impl ResultFile {
    fn failed(&self, source: std::io::Error) -> ResultWriteError {
        ResultWriteError {
            path: self.dir.path_of(self.product, &self.login),
            source,
        }
    }

    /// The temp file's path, named on first use.
    fn tmp(&mut self) -> PathBuf {
        self.tmp
            .get_or_insert_with(|| self.dir.temp_name(self.product, &self.login))
            .clone()
    }

    /// Creates the temp file and moves what memory holds into it.
    async fn spill(&mut self) -> Result<(), ResultWriteError> {
        let (tmp, memory) = (self.tmp(), std::mem::take(&mut self.memory));
        let created = tokio::task::spawn_blocking(move || {
            let mut file = create_temp(&tmp)?;
            std::io::Write::write_all(&mut file, &memory)?;
            Ok(file)
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        let file = created.map_err(|e| self.failed(e))?;
        self.file = Some(Box::new(tokio::fs::File::from_std(file)));
        Ok(())
    }

    /// Appends one chunk.
    pub async fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), ResultWriteError> {
        if self.file.is_none() {
            if self.memory.len() + chunk.len() <= IN_MEMORY_UP_TO {
                self.memory.extend_from_slice(chunk);
                return Ok(());
            }
            self.spill().await?;
        }
        let file = self.file.as_mut().expect("spilled above");
        let written = file.write_all(chunk).await;
        written.map_err(|e| self.failed(e))
    }

    /// Makes the result durable and visible; returns `<product>/<loginId>.json`.
    pub async fn persist(mut self) -> Result<PathBuf, ResultWriteError> {
        let body = match self.file.take() {
            None => Body::Memory(std::mem::take(&mut self.memory)),
            Some(mut file) => {
                let flushed = file.flush().await;
                flushed.map_err(|e| self.failed(e))?;
                Body::Written
            }
        };
        self.handed_over = true;
        let target = self.dir.path_of(self.product, &self.login);
        let publish = Publish {
            tmp: self.tmp(),
            staged: self.dir.staged_of(&self.job),
            target: target.clone(),
            body,
        };
        let published = self.dir.writer.publish(publish).await;
        published.map_err(|e| self.failed(e))?;
        Ok(target)
    }
}

impl Drop for ResultFile {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp
            && !self.handed_over
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
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
        dir.release(&earlier_job);
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
        dir.release(&this_job);
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

    /// The fault: a payload over the in-memory bound was held whole in
    /// memory (the sink's memory must not grow with FLINKQ_MAX_PAYLOAD), or
    /// its spilled temp file was left behind when the step gave up.
    #[tokio::test]
    async fn a_payload_too_large_for_memory_streams_to_disk_and_leaves_nothing_if_dropped() {
        let base = temp_base("large");
        let dir = ResultsDir::create(&base).expect("create");
        let login = LoginId::random();
        let chunk = vec![b'7'; 16 * 1024];
        let chunks = IN_MEMORY_UP_TO / chunk.len() + 2;

        let mut dropped = dir.begin(P, &login, &"job-dropped");
        for _ in 0..chunks {
            dropped.write_chunk(&chunk).await.expect("chunk");
        }
        assert!(dropped.memory.len() <= IN_MEMORY_UP_TO, "held in memory");
        assert_eq!(
            leftovers(&base.join(P.as_str())).len(),
            1,
            "spilled to a temp file"
        );
        drop(dropped);
        assert_eq!(
            leftovers(&base.join(P.as_str())),
            Vec::<std::ffi::OsString>::new()
        );

        let mut kept = dir.begin(P, &login, &"job-kept");
        for _ in 0..chunks {
            kept.write_chunk(&chunk).await.expect("chunk");
        }
        let path = kept.persist().await.expect("persist");
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            chunks * chunk.len()
        );
        assert_eq!(
            leftovers(&base.join(P.as_str())),
            Vec::<std::ffi::OsString>::new()
        );
        std::fs::remove_dir_all(&base).expect("cleanup");
    }

    /// The fault: results persisted together (one batch, one sync) crossed
    /// or lost a file, or one bad file failed the files of other logins.
    #[tokio::test]
    async fn results_persisted_together_each_land_in_their_own_file_and_one_failure_stays_its_own()
    {
        let base = temp_base("batch");
        let dir = ResultsDir::create(&base).expect("create");
        let logins: Vec<LoginId> = (0..200).map(|_| LoginId::random()).collect();
        // one product's directory replaced by a file: that product's write fails
        let broken = Product::all().find(|p| *p != P).expect("a second product");
        std::fs::remove_dir(base.join(broken.as_str())).expect("remove");
        std::fs::write(base.join(broken.as_str()), b"not a directory").expect("file");
        let writes = logins.iter().enumerate().map(|(i, login)| {
            let dir = dir.clone();
            async move {
                let job = format!("job-{i}");
                let payload = login.to_string();
                let good = dir.write(P, login, &job, payload.as_bytes()).await;
                let bad = dir.write(broken, login, &job, b"{}").await;
                (good, bad)
            }
        });
        let results = futures::future::join_all(writes).await;
        for (login, (good, bad)) in logins.iter().zip(results) {
            let path = good.expect("the good product's write");
            assert_eq!(
                std::fs::read(&path).expect("read"),
                login.to_string().as_bytes()
            );
            let error = bad.expect_err("a write under a file instead of a directory");
            assert!(error.to_string().contains("FLINKQ_RESULTS_DIR"), "{error}");
        }
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
        std::fs::remove_dir(base.join(STAGED)).expect("remove the staged links' dir");
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
            let staged = base.join(STAGED).join(format!("job-{product}.json"));
            assert!(staged.exists(), "{} staged again", staged.display());
        }
        std::fs::remove_dir_all(&base).expect("cleanup");
    }
}
