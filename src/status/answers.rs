//! Encoded JSON status answers, cached per credential and checkpoint.
//!
//! A JSON status answer costs a projection lookup, a record read, an inclusion proof (a
//! redb read per tree level), its self-check, base64 and JSON encoding; for a credential
//! whose state did not change, all of that gives the same bytes again. So the encoded
//! answer is kept and served while three things hold:
//! - the latest published checkpoint is still the one its proof leads to (a new
//!   checkpoint makes every entry stale: the answer must lead to the newest tree head);
//! - no revocation of that credential committed since it was built (the sequencer drops
//!   the entry before any caller hears "revoked", see `sequencer::effects`);
//! - the clock has not passed the moment a "good" answer turns "expired".
//!
//! Invalidation and insertion race: a lookup that read the projection before a revocation
//! committed must not store its (now wrong) answer after the invalidation removed the
//! entry. Every invalidation bumps an epoch; an answer is stored only if the epoch it read
//! before the lookup is still current.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use axum::body::Bytes;

/// Most cached answers; beyond it the cache is cleared and refills with what is asked.
const MAX_CACHED: usize = 200_000;

/// Whose status an answer is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Certificate(Vec<u8>),
    Token(String),
}

struct Cached {
    checkpoint_size: u64,
    /// Last Unix second at which the answer is still right (`u64::MAX`: final).
    valid_until: u64,
    body: Bytes,
}

/// The cache; one per appliance, inside [`super::cache::StatusCache`].
#[derive(Default)]
pub struct JsonAnswers {
    map: RwLock<HashMap<Subject, Cached>>,
    epoch: AtomicU64,
}

/// What a lookup must remember to store its answer afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl JsonAnswers {
    /// The cached answer for `subject`, if it is still right at `now` under the checkpoint
    /// of size `checkpoint_size`.
    pub fn get(&self, subject: &Subject, checkpoint_size: u64, now: u64) -> Option<Bytes> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let c = map.get(subject)?;
        (c.checkpoint_size == checkpoint_size && now <= c.valid_until).then(|| c.body.clone())
    }

    /// Taken before the projection is read: [`JsonAnswers::put`] stores the answer only if
    /// no invalidation happened in between.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Stores an answer built after `ticket` was taken.
    pub fn put(
        &self,
        ticket: Ticket,
        subject: Subject,
        checkpoint_size: u64,
        valid_until: u64,
        body: Bytes,
    ) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the write lock: an invalidation bumps the epoch before it takes
        // the lock, so it either sees this entry (and removes it) or this sees its bump.
        if self.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(
            subject,
            Cached {
                checkpoint_size,
                valid_until,
                body,
            },
        );
    }

    /// Drops the answers of `subjects` (their revocation committed).
    pub fn invalidate(&self, subjects: impl IntoIterator<Item = Subject>) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        for s in subjects {
            map.remove(&s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Subject {
        Subject::Certificate(vec![1, 2])
    }

    #[test]
    fn an_answer_lives_for_its_checkpoint_and_validity_only() {
        let a = JsonAnswers::default();
        let t = a.ticket();
        a.put(t, cert(), 10, 100, Bytes::from_static(b"good"));
        assert_eq!(a.get(&cert(), 10, 100).as_deref(), Some(&b"good"[..]));
        assert!(a.get(&cert(), 11, 100).is_none(), "newer checkpoint");
        assert!(a.get(&cert(), 10, 101).is_none(), "turned expired");
        assert!(a.get(&Subject::Token("j".into()), 10, 0).is_none());
    }

    #[test]
    fn invalidation_removes_and_beats_a_lookup_in_flight() {
        let a = JsonAnswers::default();
        a.put(
            a.ticket(),
            cert(),
            10,
            u64::MAX,
            Bytes::from_static(b"good"),
        );
        let in_flight = a.ticket();
        a.invalidate([cert()]);
        assert!(a.get(&cert(), 10, 0).is_none());
        // The lookup read the projection before the revocation: its answer is dropped.
        a.put(in_flight, cert(), 10, u64::MAX, Bytes::from_static(b"good"));
        assert!(a.get(&cert(), 10, 0).is_none());
        a.put(
            a.ticket(),
            cert(),
            10,
            u64::MAX,
            Bytes::from_static(b"revoked"),
        );
        assert_eq!(a.get(&cert(), 10, 0).as_deref(), Some(&b"revoked"[..]));
    }
}
