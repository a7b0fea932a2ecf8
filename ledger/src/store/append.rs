//! Appending: one redb write transaction per batch (Durability::Immediate),
//! records + tree nodes + the caller's projection, all or nothing.

use redb::{Durability, ReadableTable, WriteTransaction};

use super::{schema, Head, Ledger};
use crate::error::{AppendError, StoreError};
use crate::event::Event;
use crate::keys::KeyRing;
use crate::merkle;
use crate::record::{chain_hash, NewEntry, Record};

impl Ledger {
    /// Appends all entries in one durable write transaction, assigning
    /// indices and `prev_hash`; returns the committed records. Nothing is
    /// written if any entry is invalid or the commit fails.
    pub fn append_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<Record>, StoreError> {
        self.append_batch_with(entries, |_, _| Ok::<(), std::convert::Infallible>(()))
            .map_err(|e| match e {
                AppendError::Store(s) => s,
                AppendError::Project(never) => match never {},
            })
    }

    /// Like [`Ledger::append_batch`], and runs `project` inside the same write
    /// transaction before commit, so projection tables change atomically with
    /// the ledger. An `Err` from `project` aborts everything. `project` must
    /// not open the tables in [`schema`].
    pub fn append_batch_with<E, F>(
        &self,
        entries: Vec<NewEntry>,
        project: F,
    ) -> Result<Vec<Record>, AppendError<E>>
    where
        F: FnOnce(&WriteTransaction, &[Record]) -> Result<(), E>,
    {
        self.append_inner(entries, None, project)
    }

    /// `init_origin` is set only by `create`, which also writes the meta table.
    pub(super) fn append_inner<E, F>(
        &self,
        entries: Vec<NewEntry>,
        init_origin: Option<&str>,
        project: F,
    ) -> Result<Vec<Record>, AppendError<E>>
    where
        F: FnOnce(&WriteTransaction, &[Record]) -> Result<(), E>,
    {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // One writer at a time: the head we build on must still be the head at commit.
        let _writer = match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let head = self.head();
        let mut txn = self.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.write_failed(e.into()))?;
        let (records, new_head) =
            write_records(&txn, &head, entries, init_origin).map_err(|e| self.write_failed(e))?;
        project(&txn, &records).map_err(AppendError::Project)?;
        txn.commit().map_err(|e| self.write_failed(e.into()))?;
        self.committed();
        // Durability point: the batch is on disk; publish the new head.
        self.set_head(new_head);
        Ok(records)
    }
}

fn invalid(position: usize, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidEntry {
        position,
        reason: reason.into(),
    }
}

/// Builds, validates and writes the records; the tables are closed again
/// before returning so the projection callback may open its own.
fn write_records(
    txn: &WriteTransaction,
    head: &Head,
    entries: Vec<NewEntry>,
    init_origin: Option<&str>,
) -> Result<(Vec<Record>, Head), StoreError> {
    let mut frontier = head.frontier.clone();
    let mut prev_hash = head.head_hash;
    let mut last_ts = head.last_timestamp_ms;
    let mut keys = head.keys.clone();
    let mut rotations: Vec<u64> = Vec::new();
    let mut records = Vec::with_capacity(entries.len());
    let mut table = txn.open_table(schema::RECORDS)?;
    let mut nodes = txn.open_table(schema::NODES)?;
    let mut new_nodes = Vec::new();
    for (position, entry) in entries.into_iter().enumerate() {
        let index = frontier.size();
        let record = Record {
            index,
            timestamp_ms: entry.timestamp_ms,
            actor: entry.actor,
            prev_hash,
            event: entry.event,
        };
        record
            .check()
            .map_err(|e| invalid(position, e.to_string()))?;
        let is_genesis = matches!(record.event, Event::Genesis(_));
        if index == 0 && !is_genesis {
            return Err(invalid(position, "record 0 must be a genesis event"));
        }
        if index > 0 && is_genesis {
            return Err(invalid(position, "only record 0 may be a genesis event"));
        }
        match (&record.event, keys.as_mut()) {
            (Event::Genesis(g), _) => {
                keys = Some(KeyRing::from_genesis(g).map_err(|r| invalid(position, r))?);
            }
            (Event::KeyRotated(r), Some(ring)) => {
                // The verifier follows rotations from the genesis key; refuse one it would reject.
                ring.apply(r)
                    .map_err(|e| invalid(position, format!("key rotation refused: {e}")))?;
                rotations.push(index);
            }
            _ => {}
        }
        if index > 0 && record.timestamp_ms < last_ts {
            return Err(invalid(
                position,
                format!(
                    "timestamp {} is before the previous record's {}",
                    record.timestamp_ms, last_ts
                ),
            ));
        }
        let bytes = record.encode();
        // The verifier decodes these exact bytes; refuse anything it would reject.
        match Record::decode(&bytes) {
            Ok(back) if back == record => {}
            Ok(_) => return Err(invalid(position, "encoding does not round-trip")),
            Err(e) => return Err(invalid(position, e.to_string())),
        }
        // Append-only, enforced here too: an index that already holds a record means the
        // in-memory head and the file disagree, and overwriting would rewrite history.
        if table.insert(index, bytes.as_slice())?.is_some() {
            return Err(StoreError::Corrupt(format!(
                "record {index} already exists"
            )));
        }
        frontier.push(merkle::leaf_hash(&bytes), |level, idx, h| {
            new_nodes.push(((level, idx), *h))
        });
        for (key, h) in new_nodes.drain(..) {
            nodes.insert(key, h)?;
        }
        prev_hash = chain_hash(&bytes);
        last_ts = record.timestamp_ms;
        records.push(record);
    }
    if !rotations.is_empty() {
        let mut meta = txn.open_table(schema::META)?;
        let mut list = meta
            .get(schema::META_KEY_ROTATIONS)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        for i in rotations {
            list.extend_from_slice(&i.to_be_bytes());
        }
        meta.insert(schema::META_KEY_ROTATIONS, list.as_slice())?;
    }
    if let Some(origin) = init_origin {
        let mut meta = txn.open_table(schema::META)?;
        meta.insert(schema::META_ORIGIN, origin.as_bytes())?;
        meta.insert(
            schema::META_FORMAT,
            [schema::STORE_FORMAT_VERSION].as_slice(),
        )?;
        // Created now so readers never meet a missing table.
        txn.open_table(schema::CHECKPOINTS)?;
    }
    drop((table, nodes));
    let new_head = Head {
        frontier,
        head_hash: prev_hash,
        last_timestamp_ms: last_ts,
        keys,
    };
    Ok((records, new_head))
}
