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

    /// `count` consecutive stored nodes of one level from `first`, in one range read (a
    /// whole tile at once); a missing node is corruption.
    pub fn nodes(&self, level: u8, first: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        let nodes = self.txn.open_table(schema::NODES)?;
        let end = first.saturating_add(count);
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for item in nodes.range((level, first)..(level, end))? {
            let (key, value) = item?;
            let (_, index) = key.value();
            if index != first + out.len() as u64 {
                break;
            }
            out.push(value.value());
        }
        if out.len() as u64 != count {
            return Err(StoreError::Corrupt(format!(
                "tree node ({level}, {}) is missing",
                first + out.len() as u64
            )));
        }
        Ok(out)
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
