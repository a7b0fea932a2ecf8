//! Anti-replay nonces (RFC 8555 §6.5): each one is handed out once and accepted once.
//!
//! Kept in memory, bounded: the oldest are forgotten first when the bound is reached, and
//! any older than [`NONCE_LIFETIME_SECS`] are refused. A forgotten nonce is answered with
//! `badNonce` and a fresh one, which every ACME client retries transparently; so a restart
//! or an eviction costs a client one round trip and never lets a replay through.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How long a nonce stays acceptable.
pub const NONCE_LIFETIME_SECS: u64 = 600;

/// Outstanding nonces.
pub struct Nonces {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    issued: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl Nonces {
    pub fn new(capacity: usize) -> Nonces {
        Nonces {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// A new nonce, issued at `now` (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let mut raw = [0u8; 16];
        rand::fill(&mut raw);
        let nonce = URL_SAFE_NO_PAD.encode(raw);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while inner.order.len() >= self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.issued.remove(&old);
            }
        }
        inner.issued.insert(nonce.clone(), now);
        inner.order.push_back(nonce.clone());
        nonce
    }

    /// Spends `nonce`: true once, for a nonce this appliance issued less than
    /// [`NONCE_LIFETIME_SECS`] ago; false for every later or unknown use.
    pub fn consume(&self, nonce: &str, now: u64) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.issued.remove(nonce) {
            // Its slot in `order` is dropped lazily, when eviction reaches it.
            Some(at) => now.saturating_sub(at) <= NONCE_LIFETIME_SECS,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_and_never_after_its_lifetime() {
        let n = Nonces::new(10);
        let a = n.issue(100);
        assert!(n.consume(&a, 101));
        assert!(!n.consume(&a, 101), "replay");
        let b = n.issue(100);
        assert!(!n.consume(&b, 100 + NONCE_LIFETIME_SECS + 1), "expired");
        assert!(!n.consume("never-issued", 100));
    }

    #[test]
    fn the_oldest_are_forgotten_at_capacity() {
        let n = Nonces::new(2);
        let a = n.issue(1);
        let b = n.issue(1);
        let c = n.issue(1);
        assert!(!n.consume(&a, 1));
        assert!(n.consume(&b, 1));
        assert!(n.consume(&c, 1));
    }
}
