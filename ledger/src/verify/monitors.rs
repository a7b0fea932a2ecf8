//! The auditor's view of monitoring tokens (FORMAT.md §13.6): which read-only grants are
//! live. Decisions are returned as data; [`super::semantic`] turns them into violations.

use std::collections::{HashMap, HashSet};

use crate::event::{MonitorTokenCreated, MonitorTokenRevoked};

/// Live monitoring grants by name, and every token hash ever granted.
#[derive(Debug, Default)]
pub(crate) struct MonitorBook {
    /// name -> (token hash, expires_at) of its live grant.
    live: HashMap<String, ([u8; 32], u64)>,
    granted: HashSet<[u8; 32]>,
}

impl MonitorBook {
    /// Applies a grant at time `now` (Unix seconds); returns why it is invalid, if it is.
    /// An expired grant no longer blocks its name.
    pub(crate) fn create(&mut self, now: u64, m: &MonitorTokenCreated) -> Option<String> {
        if !self.granted.insert(m.token_hash) {
            return Some(format!(
                "monitoring token {} was granted before",
                hex::encode(m.token_hash)
            ));
        }
        if m.expires_at <= now {
            return Some(format!(
                "monitoring token {:?} granted already expired",
                m.name
            ));
        }
        let previous = self
            .live
            .insert(m.name.clone(), (m.token_hash, m.expires_at));
        match previous {
            Some((_, expires_at)) if expires_at > now => Some(format!(
                "monitoring token {:?} granted while an earlier one is live",
                m.name
            )),
            _ => None,
        }
    }

    /// Applies a withdrawal; it must name the live grant of that name by its hash.
    pub(crate) fn revoke(&mut self, m: &MonitorTokenRevoked) -> Option<String> {
        match self.live.get(&m.name) {
            Some((hash, _)) if *hash == m.token_hash => {
                self.live.remove(&m.name);
                None
            }
            _ => Some(format!(
                "monitoring token {:?} ({}) is not a live grant",
                m.name,
                hex::encode(m.token_hash)
            )),
        }
    }

    /// Number of grants ever made.
    pub(crate) fn granted(&self) -> usize {
        self.granted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(name: &str, hash: u8, expires_at: u64) -> MonitorTokenCreated {
        MonitorTokenCreated {
            name: name.into(),
            token_hash: [hash; 32],
            expires_at,
        }
    }

    #[test]
    fn one_live_grant_per_name_and_hashes_never_reused() {
        let mut book = MonitorBook::default();
        assert_eq!(book.create(10, &grant("prom", 1, 100)), None);
        assert!(book.create(20, &grant("prom", 2, 100)).is_some());
        assert!(book.create(20, &grant("other", 1, 100)).is_some());
        // Once expired, the name may be granted again.
        assert_eq!(book.create(150, &grant("late", 3, 200)), None);
        assert!(book.create(150, &grant("dead", 4, 150)).is_some());
    }

    #[test]
    fn withdrawal_must_name_the_live_grant() {
        let mut book = MonitorBook::default();
        book.create(10, &grant("prom", 1, 100));
        let wrong = MonitorTokenRevoked {
            name: "prom".into(),
            token_hash: [9; 32],
        };
        assert!(book.revoke(&wrong).is_some());
        let right = MonitorTokenRevoked {
            name: "prom".into(),
            token_hash: [1; 32],
        };
        assert_eq!(book.revoke(&right), None);
        assert!(
            book.revoke(&right).is_some(),
            "a second withdrawal is invalid"
        );
        assert_eq!(book.create(20, &grant("prom", 2, 100)), None);
        assert_eq!(book.granted(), 2);
    }
}
