//! The steps this process holds, renewed together by one heartbeat
//! ([`crate::services::heartbeat`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use flinkq_shared::{ClaimToken, JobId};

/// Leases held by this process: job id → fencing token.
#[derive(Debug, Default, Clone)]
pub struct HeldLeases {
    held: Arc<Mutex<HashMap<JobId, ClaimToken>>>,
}

impl HeldLeases {
    /// Records a claimed step; the guard forgets it when the step ends.
    pub fn hold(&self, id: JobId, token: ClaimToken) -> LeaseGuard {
        self.lock().insert(id, token.clone());
        LeaseGuard {
            leases: self.clone(),
            id,
            token,
        }
    }

    /// Every lease held now.
    pub fn snapshot(&self) -> Vec<(JobId, ClaimToken)> {
        self.lock()
            .iter()
            .map(|(id, token)| (*id, token.clone()))
            .collect()
    }

    /// How many steps are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no step is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, ClaimToken>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets a held lease when dropped (the step committed, was fenced, or
/// gave up and lets the lease expire).
#[derive(Debug)]
pub struct LeaseGuard {
    leases: HeldLeases,
    id: JobId,
    token: ClaimToken,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        if held.get(&self.id) == Some(&self.token) {
            held.remove(&self.id);
        }
    }
}
