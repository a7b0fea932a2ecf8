//! The sequencer's seam to storage: the real ledger in production, a fault-injecting
//! wrapper in the sequencer's own tests.

use std::sync::Arc;

use credmint_ledger::event::KeyInfo;
use credmint_ledger::{Ledger, NewEntry, Record};

use crate::registry::{apply, ProjectionError, Registry};

/// What the sequencer reads and writes.
pub trait Store: Send + Sync {
    /// A snapshot of the committed projections.
    fn registry(&self) -> Result<Registry, ProjectionError>;
    /// Records in the ledger (the index the next entry gets).
    fn size(&self) -> u64;
    /// Timestamp of the newest record (entries may not go back in time).
    fn head_timestamp_ms(&self) -> u64;
    /// Appends `entries` and updates the projections in one durable transaction.
    fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Record>, String>;
    /// The keys in force (genesis plus committed rotations), one per role.
    fn keys_in_force(&self) -> Vec<KeyInfo>;
    /// False after a storage failure left the store unusable, until [`Store::recover`]
    /// succeeds.
    fn healthy(&self) -> bool {
        true
    }
    /// Tries to make an unhealthy store usable again (reopen the file).
    fn recover(&self) -> Result<(), String> {
        Ok(())
    }
}

/// How long a reopen waits for readers to let go of the old handle.
const REOPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The ledger with its projections.
pub struct LedgerStore(pub Arc<Ledger>);

impl LedgerStore {
    /// After a storage failure redb refuses everything on the old handle: reopen it.
    fn reopen_if_needed(&self) -> Result<(), String> {
        if !self.0.needs_reopen() {
            return Ok(());
        }
        self.0
            .reopen(REOPEN_PATIENCE)
            .map_err(|e| format!("ledger unavailable after a storage failure: {e}"))?;
        tracing::warn!(
            size = self.0.size(),
            "ledger file reopened after a storage failure"
        );
        Ok(())
    }
}

impl Store for LedgerStore {
    fn registry(&self) -> Result<Registry, ProjectionError> {
        Registry::open(&self.0)
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn head_timestamp_ms(&self) -> u64 {
        self.0.head_timestamp_ms()
    }
    fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Record>, String> {
        self.reopen_if_needed()?;
        let result = self
            .0
            .append_batch_with(entries, apply)
            .map_err(|e| e.to_string());
        if result.is_err() {
            // Reopen at once, so reads work again as soon as the disk allows.
            let _ = self.reopen_if_needed();
        }
        result
    }
    fn keys_in_force(&self) -> Vec<KeyInfo> {
        self.0.keys_in_force()
    }
    fn healthy(&self) -> bool {
        self.0.writable()
    }
    fn recover(&self) -> Result<(), String> {
        self.reopen_if_needed()?;
        self.0
            .probe_write()
            .map_err(|e| format!("ledger still refuses writes: {e}"))?;
        tracing::warn!(size = self.0.size(), "ledger takes writes again");
        Ok(())
    }
}
