//! Whole-ledger verification from genesis with only the pinned ledger key.
//!
//! A library so the audit CLI, the tests and the appliance's self-check all
//! run the same code. It reads the store only through [`crate::store::schema`]
//! on a read snapshot and never writes.

mod acme;
mod compact;
mod error;
mod monitors;
mod operators;
pub mod semantic;
mod stream;

use std::path::Path;

use redb::{ReadTransaction, ReadableDatabase};

pub use error::{VerifyError, VerifySummary};
pub use semantic::{SemanticChecker, SemanticViolation};
pub use stream::StreamVerifier;

use crate::store::schema;
use crate::store::Ledger;

/// Verifies an open ledger (see [`verify_snapshot`]).
pub fn verify_ledger(
    ledger: &Ledger,
    pinned_ledger_key: &[u8; 32],
) -> Result<VerifySummary, VerifyError> {
    let txn = ledger.begin_read()?;
    verify_snapshot(&txn, pinned_ledger_key)
}

/// Verifies a ledger file without opening it as a [`Ledger`] (which would
/// refuse some corrupt files): the auditor's entry point. Opens read-only.
pub fn verify_file(
    path: &Path,
    pinned_ledger_key: &[u8; 32],
) -> Result<VerifySummary, VerifyError> {
    let db = redb::ReadOnlyDatabase::open(path).map_err(crate::error::StoreError::from)?;
    let txn = db.begin_read().map_err(crate::error::StoreError::from)?;
    verify_snapshot(&txn, pinned_ledger_key)
}

/// Verifies one read snapshot of a ledger database:
///
/// 1. every record, in table-key order, through [`StreamVerifier`] (table
///    key = position = the record's index, canonical bytes, chain, genesis
///    and pinned key, timestamps);
/// 2. every stored tree node against the recomputed one (the proofs the
///    store serves come from these nodes);
/// 3. every stored checkpoint when the stream reaches its size: signature by
///    the ledger key in force at that size (the pinned key, or the new key of
///    the last verified ledger-key rotation; key name = origin; unknown keys
///    ignored), size, root;
/// 4. that no leaf hash is stored past the last record (cut-off tail);
/// 5. the stored origin against genesis.
pub fn verify_snapshot(
    txn: &ReadTransaction,
    pinned_ledger_key: &[u8; 32],
) -> Result<VerifySummary, VerifyError> {
    let records = txn
        .open_table(schema::RECORDS)
        .map_err(crate::error::StoreError::from)?;
    let nodes = txn
        .open_table(schema::NODES)
        .map_err(crate::error::StoreError::from)?;
    let checkpoints = txn
        .open_table(schema::CHECKPOINTS)
        .map_err(crate::error::StoreError::from)?;
    let meta = txn
        .open_table(schema::META)
        .map_err(crate::error::StoreError::from)?;

    let mut cps = checkpoints
        .range::<u64>(..)
        .map_err(crate::error::StoreError::from)?
        .peekable();
    let mut v = StreamVerifier::new(*pinned_ledger_key);
    let mut node_err: Option<VerifyError> = None;

    let range = records
        .range::<u64>(..)
        .map_err(crate::error::StoreError::from)?;
    for item in range {
        let (k, bytes) = item.map_err(crate::error::StoreError::from)?;
        let position = v.size();
        if k.value() != position {
            return Err(VerifyError::IndexMismatch {
                expected: position,
                found: k.value(),
            });
        }
        v.push_record_with(bytes.value(), |level, index, h| {
            if node_err.is_some() {
                return;
            }
            let stored = match nodes.get((level, index)) {
                Ok(g) => g.map(|g| g.value()),
                Err(e) => {
                    node_err = Some(crate::error::StoreError::from(e).into());
                    return;
                }
            };
            if stored.as_ref() != Some(h) {
                node_err = Some(VerifyError::NodeMismatch {
                    level,
                    index,
                    expected: *h,
                    found: stored,
                });
            }
        })?;
        if let Some(e) = node_err.take() {
            return Err(e);
        }
        check_due_checkpoints(&mut v, &mut cps)?;
    }
    let size = v.size();
    if nodes
        .get((0u8, size))
        .map_err(crate::error::StoreError::from)?
        .is_some()
    {
        return Err(VerifyError::MissingRecord { index: size });
    }
    if let Some(item) = cps.next() {
        let (size, _) = item.map_err(crate::error::StoreError::from)?;
        return Err(VerifyError::CheckpointBeyondLedger {
            size: size.value(),
            ledger_size: v.size(),
        });
    }
    let summary = v.finish()?;
    let stored_origin = meta
        .get(schema::META_ORIGIN)
        .map_err(crate::error::StoreError::from)?
        .map(|g| String::from_utf8_lossy(g.value()).into_owned())
        .unwrap_or_default();
    if stored_origin != summary.origin {
        return Err(VerifyError::OriginMismatch {
            expected: summary.origin,
            found: stored_origin,
        });
    }
    Ok(summary)
}

type CheckpointRange = std::iter::Peekable<redb::Range<'static, u64, &'static str>>;

/// Checks every stored checkpoint whose size equals the records verified so far.
fn check_due_checkpoints(
    v: &mut StreamVerifier,
    cps: &mut CheckpointRange,
) -> Result<(), VerifyError> {
    loop {
        let due = match cps.peek() {
            Some(Ok((size, _))) => size.value() <= v.size(),
            Some(Err(_)) => true,
            None => false,
        };
        if !due {
            return Ok(());
        }
        let Some(item) = cps.next() else {
            return Ok(());
        };
        let (size, text) = item.map_err(crate::error::StoreError::from)?;
        let size = size.value();
        if size < v.size() {
            // Only possible for a size-0 checkpoint (before genesis).
            return Err(VerifyError::CheckpointSizeMismatch {
                expected: v.size(),
                found: size,
            });
        }
        let cp = v.check_checkpoint(text.value())?;
        debug_assert_eq!(cp.size, size);
    }
}
