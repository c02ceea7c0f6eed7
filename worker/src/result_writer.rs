//! The files sink's one I/O thread, with group commit: every result file
//! written, published, looked up or released goes through it.
//!
//! Why one thread: a result file used to cost a dozen hand-offs to tokio's
//! blocking pool (open, each chunk, flush, fsync, link, rename, the staged
//! link's removal after the commit) and one `fsync` each, which on a
//! virtual disk took ~3.5 ms of wall time and ~0.2–0.4 ms of CPU per file:
//! under load, hundreds of blocking threads waited on the disk and the
//! worker spent most of its CPU switching between them. Here a batch of
//! files (all the requests queued while the previous batch was on disk) is
//! written, then made durable by **one** `syncfs` of the results
//! directory's file system, then published. No request waits for a timer:
//! at low load a batch is one file, under load the disk's latency makes
//! the batches large.
//!
//! The guarantee is unchanged: a file is renamed over `<loginId>.json`, and
//! its path handed to the commit, only after its bytes are on disk; a
//! failed write or sync fails every file of its batch (their steps retry)
//! and leaves no temp file. `syncfs` reports a writeback error of the file
//! system that happened since the previous call (Linux 5.8 and later), so
//! an error of any file of the batch is seen. It also flushes whatever else
//! is dirty on that file system: keep the results directory on a volume of
//! its own (README, "Result sinks").

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

/// Most requests handled per batch: a bound on one batch's work, never on
/// how many may wait (each running step has at most one request waiting).
const MAX_BATCH: usize = 512;

/// A result's bytes, as handed to the writer.
#[derive(Debug)]
pub(crate) enum Body {
    /// The whole payload, small enough to have been kept in memory: the
    /// writer creates the temp file (mode 0600) and writes it.
    Memory(Vec<u8>),
    /// A payload too large for memory, already written whole to the temp
    /// file (the caller flushed and closed it).
    Written,
}

/// One result to make durable and publish: `tmp` (created from `body`, or
/// written already) is linked as the job's staged payload `staged`, then
/// renamed over the login's file `target`.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) tmp: PathBuf,
    pub(crate) staged: PathBuf,
    pub(crate) target: PathBuf,
    pub(crate) body: Body,
}

enum Request {
    Publish(Publish, oneshot::Sender<io::Result<()>>),
    Reuse {
        staged: PathBuf,
        tmp: PathBuf,
        target: PathBuf,
        reply: oneshot::Sender<io::Result<bool>>,
    },
    Release(PathBuf),
}

/// The handle of the writer thread; clones share it. The thread ends when
/// the last handle is dropped, after the requests already sent.
#[derive(Debug, Clone)]
pub(crate) struct ResultWriter {
    tx: mpsc::Sender<Request>,
}

/// The writer thread is gone (it cannot end while a handle exists, short of
/// a bug): the request fails like an I/O error, and its step is retried.
fn writer_gone() -> io::Error {
    io::Error::other("the results writer thread stopped; restart the worker")
}

impl ResultWriter {
    /// Starts the writer thread of the results directory `dir`.
    pub(crate) fn start(dir: &Path) -> io::Result<Self> {
        // the file system `syncfs` flushes is the one this directory is on
        let handle = File::open(dir)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("flinkq-results".into())
            .spawn(move || run(&handle, &rx))?;
        Ok(ResultWriter { tx })
    }

    /// Makes `publish` durable, then visible (see the module's doc).
    pub(crate) async fn publish(&self, publish: Publish) -> io::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Publish(publish, reply))
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// If `staged` exists, publishes it again as `target` (through `tmp`)
    /// and answers true; false when there is no such staged payload.
    pub(crate) async fn reuse(
        &self,
        staged: PathBuf,
        tmp: PathBuf,
        target: PathBuf,
    ) -> io::Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Reuse {
                staged,
                tmp,
                target,
                reply,
            })
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Removes a staged link, without waiting: a failure is logged (the
    /// link is harmless, and swept once old).
    pub(crate) fn release(&self, staged: PathBuf) {
        if self.tx.send(Request::Release(staged)).is_err() {
            tracing::warn!("{}", writer_gone());
        }
    }
}

fn run(dir: &File, rx: &mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut written = Vec::new();
        // in the order sent: a release sent before a lookup of the same
        // link is done before it
        for request in batch {
            match request {
                Request::Release(staged) => release(&staged),
                Request::Reuse {
                    staged,
                    tmp,
                    target,
                    reply,
                } => {
                    let _ = reply.send(reuse(&staged, &tmp, &target));
                }
                Request::Publish(publish, reply) => match write(&publish) {
                    Ok(()) => written.push((publish, reply)),
                    Err(error) => {
                        let _ = std::fs::remove_file(&publish.tmp);
                        let _ = reply.send(Err(error));
                    }
                },
            }
        }
        if written.is_empty() {
            continue;
        }
        // one flush to disk for every file of the batch
        let synced = rustix::fs::syncfs(dir).map_err(io::Error::from);
        for (publish, reply) in written {
            let published = match &synced {
                Ok(()) => publish_synced(&publish.tmp, &publish.staged, &publish.target),
                Err(error) => Err(io::Error::new(
                    error.kind(),
                    format!("syncing the results file system failed: {error}"),
                )),
            };
            if published.is_err() {
                let _ = std::fs::remove_file(&publish.tmp);
            }
            let _ = reply.send(published);
        }
    }
}

/// Creates the temp file of an in-memory payload and writes it.
fn write(publish: &Publish) -> io::Result<()> {
    match &publish.body {
        Body::Written => Ok(()),
        Body::Memory(bytes) => create_temp(&publish.tmp)?.write_all(bytes),
    }
}

/// Creates a result's temp file, mode 0600 and never over an existing
/// file, and its directory too, should the product's have been removed
/// since the start. Blocking: the writer thread's, or a spilling payload's
/// (on tokio's blocking pool).
pub(crate) fn create_temp(tmp: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    in_its_directory(tmp, || options.open(tmp))
}

/// `make` of `path`, again once `path`'s directory is created if it failed
/// for want of it: one system call as long as the directory is there.
fn in_its_directory<T>(path: &Path, make: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match make() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            make()
        }
        made => made,
    }
}

/// The staged link first: once `<loginId>.json` is this job's, a lost
/// commit must find the job's payload staged.
fn publish_synced(tmp: &Path, staged: &Path, target: &Path) -> io::Result<()> {
    link_staged(tmp, staged)?;
    std::fs::rename(tmp, target)
}

/// Links `tmp` as the job's staged payload, over an earlier attempt's link
/// if one is left, and into a new staged directory should it have been
/// removed since the start. Usually one `link`: the removal and the
/// directory are made only when the link fails for want of them (this
/// thread is the only one that touches staged links).
fn link_staged(tmp: &Path, staged: &Path) -> io::Result<()> {
    let link = || std::fs::hard_link(tmp, staged);
    match in_its_directory(staged, link) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(staged)?;
            link()
        }
        linked => linked,
    }
}

fn reuse(staged: &Path, tmp: &Path, target: &Path) -> io::Result<bool> {
    match std::fs::hard_link(staged, tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if let Err(e) = std::fs::rename(tmp, target) {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    Ok(true)
}

fn release(staged: &Path) {
    match std::fs::remove_file(staged) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(
            %error,
            path = %staged.display(),
            "cannot remove a staged result link; it is harmless but takes disk space"
        ),
    }
}
