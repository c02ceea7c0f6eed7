//! `ClaimWake`: lets a step that schedules its job's next step wake the claim
//! loop, so a re-poll due sooner than the loop's next look is not late by up
//! to an idle period.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Shared by the claim loop and the executor of one worker.
#[derive(Debug, Default)]
pub struct ClaimWake {
    notify: Notify,
    /// When the claim loop will look again (Redis ms); 0 while it is busy.
    planned_ms: AtomicU64,
}

impl ClaimWake {
    /// The claim loop is busy claiming or waiting for a free slot: a newly
    /// scheduled step cannot make it look any sooner.
    pub fn busy(&self) {
        self.planned_ms.store(0, Ordering::Relaxed);
    }

    /// The claim loop will sleep until `wake_at_ms` (Redis ms).
    pub fn sleeping_until(&self, wake_at_ms: u64) {
        self.planned_ms.store(wake_at_ms, Ordering::Relaxed);
    }

    /// A step was scheduled at `due_ms`: wake the loop if it would look later.
    pub fn scheduled(&self, due_ms: u64) {
        if due_ms < self.planned_ms.load(Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }

    /// Resolves when a step is scheduled sooner than planned.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}
