//! The steps this process holds, renewed together by one heartbeat
//! ([`crate::services::heartbeat`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use flinkq_shared::JobId;
use flinkq_shared::store::{Claim, HeldClaim};

/// Leases held by this process: job id → its claim.
#[derive(Debug, Default, Clone)]
pub struct HeldLeases {
    held: Arc<Mutex<HashMap<JobId, HeldClaim>>>,
}

impl HeldLeases {
    /// Records a claimed step; the guard forgets it when the step ends.
    pub fn hold(&self, claim: &Claim) -> LeaseGuard {
        let held = claim.held();
        self.lock().insert(held.id(), held.clone());
        LeaseGuard {
            leases: self.clone(),
            held,
        }
    }

    /// Every lease held now.
    pub fn snapshot(&self) -> Vec<HeldClaim> {
        self.lock().values().cloned().collect()
    }

    /// How many steps are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no step is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, HeldClaim>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets a held lease when dropped (the step committed, was fenced, or
/// gave up and lets the lease expire).
#[derive(Debug)]
pub struct LeaseGuard {
    leases: HeldLeases,
    held: HeldClaim,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        if held.get(&self.held.id()) == Some(&self.held) {
            held.remove(&self.held.id());
        }
    }
}
