//! Misuse signals: counters, and rate limiting so a flood of replays cannot flood the
//! ledger. Each credential gets at most one `reuse-detected` event per window; repeats in
//! between are counted and folded into the next event's `count`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Seconds during which repeats of the same credential are folded into one event.
const WINDOW_SECS: u64 = 60;
/// Most distinct credentials tracked; beyond it the oldest windows are forgotten.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct Signals {
    reuse_total: AtomicU64,
    windows: Mutex<HashMap<String, (u64, u64)>>,
}

impl Signals {
    /// Counts one presentation of a dead credential. Returns `Some(count)` when a ledger
    /// event should be written now (covering `count` presentations), `None` when folded.
    pub fn reuse(&self, credential: &str, now: u64) -> Option<u64> {
        self.reuse_total.fetch_add(1, Ordering::Relaxed);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| now.saturating_sub(*start) < WINDOW_SECS);
        }
        let entry = windows.entry(credential.to_string()).or_insert((0, 0));
        entry.1 += 1;
        if entry.0 == 0 || now.saturating_sub(entry.0) >= WINDOW_SECS {
            let count = entry.1;
            *entry = (now.max(1), 0);
            Some(count)
        } else {
            None
        }
    }

    pub fn reuse_total(&self) -> u64 {
        self.reuse_total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_a_window_are_folded() {
        let s = Signals::default();
        assert_eq!(s.reuse("a", 100), Some(1));
        assert_eq!(s.reuse("a", 110), None);
        assert_eq!(s.reuse("a", 120), None);
        assert_eq!(s.reuse("b", 120), Some(1));
        assert_eq!(s.reuse("a", 161), Some(3));
        assert_eq!(s.reuse_total(), 5);
    }
}
