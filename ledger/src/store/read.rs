//! Reads: records (single and streamed), proofs and historical roots, each
//! O(log n) table lookups on one read-transaction snapshot.

use redb::{ReadOnlyTable, ReadTransaction};

use super::{schema, Ledger};
use crate::error::{DecodeError, ProofError, StoreError};
use crate::merkle;
use crate::record::Record;
use crate::Hash;

/// A stored record as raw bytes, with the table key it was stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Table key (should equal the record's own index).
    pub index: u64,
    /// The canonical encoding, exactly as stored.
    pub bytes: Vec<u8>,
}

impl RawRecord {
    /// Decodes the bytes.
    pub fn decode(&self) -> Result<Record, DecodeError> {
        Record::decode(&self.bytes)
    }
}

/// Streams records in index order from one read snapshot; O(1) memory.
pub struct RecordIter {
    range: redb::Range<'static, u64, &'static [u8]>,
}

impl Iterator for RecordIter {
    type Item = Result<RawRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.range.next()?;
        Some(
            item.map(|(k, v)| RawRecord {
                index: k.value(),
                bytes: v.value().to_vec(),
            })
            .map_err(StoreError::from),
        )
    }
}

/// Streams stored checkpoints `(tree size, note text)` in size order.
pub struct CheckpointIter {
    range: redb::Range<'static, u64, &'static str>,
}

impl Iterator for CheckpointIter {
    type Item = Result<(u64, String), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.range.next()?;
        Some(
            item.map(|(k, v)| (k.value(), v.value().to_owned()))
                .map_err(StoreError::from),
        )
    }
}

/// Opens the records table of a snapshot (any redb database: tools use this
/// on files they opened read-only).
pub(crate) fn record_iter(txn: &ReadTransaction, from: u64) -> Result<RecordIter, StoreError> {
    let table = txn.open_table(schema::RECORDS)?;
    Ok(RecordIter {
        range: table.range(from..)?,
    })
}

pub(crate) fn checkpoint_iter(txn: &ReadTransaction) -> Result<CheckpointIter, StoreError> {
    checkpoint_iter_from(txn, 0)
}

/// Checkpoints of size `>= from`, in size order.
pub(crate) fn checkpoint_iter_from(
    txn: &ReadTransaction,
    from: u64,
) -> Result<CheckpointIter, StoreError> {
    let table = txn.open_table(schema::CHECKPOINTS)?;
    Ok(CheckpointIter {
        range: table.range::<u64>(from..)?,
    })
}

/// Node lookup over a snapshot's node table; a missing node is corruption.
pub(crate) fn node_lookup(
    nodes: &ReadOnlyTable<(u8, u64), [u8; 32]>,
) -> impl FnMut(u8, u64) -> Result<Hash, StoreError> + '_ {
    move |level, index| {
        nodes
            .get((level, index))?
            .map(|g| g.value())
            .ok_or_else(|| StoreError::Corrupt(format!("tree node ({level}, {index}) is missing")))
    }
}

impl Ledger {
    /// The record at `index`, if committed.
    pub fn record(&self, index: u64) -> Result<Option<Record>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(schema::RECORDS)?;
        let Some(v) = table.get(index)? else {
            return Ok(None);
        };
        Record::decode(v.value())
            .map(Some)
            .map_err(|source| StoreError::Decode { index, source })
    }

    /// The raw encoding of the record at `index`, if committed.
    pub fn record_bytes(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(schema::RECORDS)?;
        Ok(table.get(index)?.map(|v| v.value().to_vec()))
    }

    /// Streams raw records from `from` to the end of one read snapshot.
    pub fn records(&self, from: u64) -> Result<RecordIter, StoreError> {
        record_iter(&self.begin_read()?, from)
    }

    fn check_size(&self, first: u64, second: u64) -> Result<(), StoreError> {
        if second > self.size() {
            return Err(ProofError::InvalidSizes {
                first,
                second,
                reason: "tree size is beyond the committed ledger",
            }
            .into());
        }
        Ok(())
    }

    /// Inclusion proof of record `index` in the tree of `tree_size` records.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(index, tree_size)?;
        let txn = self.begin_read()?;
        let nodes = txn.open_table(schema::NODES)?;
        let result = merkle::inclusion_proof(index, tree_size, &mut node_lookup(&nodes));
        result
    }

    /// Consistency proof between tree sizes `old_size <= new_size`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(old_size, new_size)?;
        let txn = self.begin_read()?;
        let nodes = txn.open_table(schema::NODES)?;
        let result = merkle::consistency_proof(old_size, new_size, &mut node_lookup(&nodes));
        result
    }

    /// Merkle root of the first `tree_size` records.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, StoreError> {
        self.check_size(0, tree_size)?;
        let txn = self.begin_read()?;
        let nodes = txn.open_table(schema::NODES)?;
        let result = merkle::root_at(tree_size, &mut node_lookup(&nodes));
        result
    }

    /// The leaf hash of record `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Option<Hash>, StoreError> {
        let txn = self.begin_read()?;
        let nodes = txn.open_table(schema::NODES)?;
        Ok(nodes.get((0u8, index))?.map(|g| g.value()))
    }
}
