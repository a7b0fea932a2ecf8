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
}

/// The ledger with its projections.
pub struct LedgerStore(pub Arc<Ledger>);

impl Store for LedgerStore {
    fn registry(&self) -> Result<Registry, ProjectionError> {
        Registry::open(self.0.database())
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn head_timestamp_ms(&self) -> u64 {
        self.0.head_timestamp_ms()
    }
    fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Record>, String> {
        self.0
            .append_batch_with(entries, apply)
            .map_err(|e| e.to_string())
    }
    fn keys_in_force(&self) -> Vec<KeyInfo> {
        self.0.keys_in_force()
    }
}
