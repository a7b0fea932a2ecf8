//! Admission in front of `C_Sign`: a bounded number of signatures may be running or
//! waiting for a session. Beyond it, callers are refused at once (the API answers 503 with
//! Retry-After) instead of queueing HSM work that would only finish after their clients
//! gave up. Issuance, fresh OCSP signatures and health probes all pass through it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Signatures admitted per PKCS#11 session: one signing, the rest waiting briefly.
pub const PER_SESSION: usize = 8;

/// The HSM's admission gate; cheap to clone.
#[derive(Clone, Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// Held while a signature is in flight; dropping it admits the next caller.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] OwnedSemaphorePermit);

/// The HSM is at capacity: retry shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the HSM is at capacity ({capacity} signatures in flight)")]
pub struct Overloaded {
    pub capacity: usize,
}

impl Admission {
    /// Admits `sessions * PER_SESSION` signatures at a time.
    pub fn for_sessions(sessions: usize) -> Admission {
        Admission::new(sessions.max(1) * PER_SESSION)
    }

    pub fn new(capacity: usize) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// A permit now, or `Overloaded` now: never waits.
    pub fn try_admit(&self) -> Result<Admitted, Overloaded> {
        self.permits
            .clone()
            .try_acquire_owned()
            .map(Admitted)
            .map_err(|_| Overloaded {
                capacity: self.capacity,
            })
    }

    /// Signatures in flight right now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_capacity_then_refuses_until_a_permit_returns() {
        let gate = Admission::new(2);
        let a = gate.try_admit().unwrap();
        let _b = gate.try_admit().unwrap();
        assert_eq!(gate.try_admit().unwrap_err(), Overloaded { capacity: 2 });
        assert_eq!(gate.in_flight(), 2);
        drop(a);
        assert!(gate.try_admit().is_ok());
    }
}
