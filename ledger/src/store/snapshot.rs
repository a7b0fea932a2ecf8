//! One read snapshot of the ledger tables, so a reader that needs records,
//! checkpoints and tree nodes together (the export) sees one consistent
//! state however many appends commit meanwhile.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

use super::read::{checkpoint_iter, checkpoint_iter_from, node_lookup, record_iter};
use super::{schema, CheckpointIter, Ledger, RecordIter};
use crate::error::StoreError;
use crate::merkle;
use crate::Hash;

/// A read transaction over the ledger tables; every method sees the same state.
pub struct Snapshot {
    txn: ReadTransaction,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens a read snapshot (records, nodes and checkpoints as of now).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            txn: self.begin_read()?,
        })
    }
}

impl Snapshot {
    /// Number of records in the snapshot.
    pub fn size(&self) -> Result<u64, StoreError> {
        let table = self.txn.open_table(schema::RECORDS)?;
        let last = table.last()?.map(|(k, _)| k.value());
        Ok(last.map_or(0, |k| k.saturating_add(1)))
    }

    /// Streams raw records from `from`, in index order.
    pub fn records(&self, from: u64) -> Result<RecordIter, StoreError> {
        record_iter(&self.txn, from)
    }

    /// Streams `(size, note text)` checkpoints in size order.
    pub fn checkpoints(&self) -> Result<CheckpointIter, StoreError> {
        checkpoint_iter(&self.txn)
    }

    /// Streams `(size, note text)` checkpoints of size `>= from`, in size order (the tiles
    /// publisher reads only the checkpoints it has not published yet).
    pub fn checkpoints_from(&self, from: u64) -> Result<CheckpointIter, StoreError> {
        checkpoint_iter_from(&self.txn, from)
    }

    /// The stored tree node `(level, index)`: the hash of leaves
    /// `[index << level, (index + 1) << level)` (FORMAT.md §10); a missing node is
    /// corruption. Tiles are read from here, so they are exactly the signed tree.
    pub fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        let nodes = self.txn.open_table(schema::NODES)?;
        let hash = node_lookup(&nodes)(level, index);
        hash
    }

    /// Size of the latest stored checkpoint, if any.
    pub fn latest_checkpoint_size(&self) -> Result<Option<u64>, StoreError> {
        let table = self.txn.open_table(schema::CHECKPOINTS)?;
        let last = table.last()?.map(|(k, _)| k.value());
        Ok(last)
    }

    /// Number of stored checkpoints with size `<= up_to`.
    pub fn checkpoint_count(&self, up_to: u64) -> Result<u64, StoreError> {
        let table = self.txn.open_table(schema::CHECKPOINTS)?;
        if table.last()?.is_some_and(|(k, _)| k.value() <= up_to) {
            return Ok(table.len()?);
        }
        let mut n = 0u64;
        for item in table.range(..=up_to)? {
            item?;
            n += 1;
        }
        Ok(n)
    }

    /// Merkle root of the first `size` records (O(log n) node reads).
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let nodes = self.txn.open_table(schema::NODES)?;
        let root = merkle::root_at(size, &mut node_lookup(&nodes));
        root
    }
}
