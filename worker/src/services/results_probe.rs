//! The results probe: is the results directory writable? Checked once at
//! start (a worker that cannot store results must not claim) and then every
//! few seconds, so `/readyz` drops while the volume is gone, full or
//! read-only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flinkq_shared::store::StoreError;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Next, Service};
use crate::health::Health;

/// How often the running worker probes the directory.
pub const PROBE_PERIOD: Duration = Duration::from_secs(2);

/// Creates, writes, syncs and removes a small file in `dir`: the same
/// operations a result write needs. Permission bits alone cannot tell (root
/// ignores them; a read-only mount or a full disk does not show in them).
pub fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(
        ".flinkq-probe-{}-{:x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(b"probe")?;
            file.sync_all()
        });
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// Probes the results directory every [`PROBE_PERIOD`], reporting to
/// `health`; logs once when it breaks and once when it recovers.
#[derive(Debug)]
pub struct ResultsProbe {
    /// The results directory (FLINKQ_RESULTS_DIR).
    pub dir: PathBuf,
    /// Health flags: `/readyz` is false while the directory is not writable.
    pub health: Health,
}

impl Service for ResultsProbe {
    const NAME: &'static str = "results probe";

    fn period(&self) -> Duration {
        PROBE_PERIOD
    }

    /// Never fails: an unwritable directory is a health state, not an error
    /// to back off from.
    async fn tick(&mut self, _stop: &CancellationToken) -> Result<Next, StoreError> {
        let target = self.dir.clone();
        let outcome = tokio::task::spawn_blocking(move || probe(&target))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        let was_writable = self.health.results_writable();
        let dir = self.dir.display();
        match outcome {
            Ok(()) => {
                self.health.set_results_writable(true);
                if !was_writable {
                    info!(%dir, "results directory writable again; ready");
                }
            }
            Err(error) => {
                self.health.set_results_writable(false);
                if was_writable {
                    warn!(%dir, %error, "results directory not writable (FLINKQ_RESULTS_DIR); /readyz is false until it is");
                }
            }
        }
        Ok(Next::Period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_dir_passes_and_a_file_in_its_place_fails() {
        let dir = std::env::temp_dir().join(format!("flinkq-probe-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("create");
        probe(&dir).expect("writable");
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            0,
            "the probe leaves nothing behind"
        );
        let file = dir.join("not-a-dir");
        std::fs::write(&file, b"x").expect("write");
        assert!(probe(&file).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
