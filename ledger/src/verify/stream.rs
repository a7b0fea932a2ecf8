//! Streaming verifier: feed record bytes in order, and checkpoints when the
//! fed size reaches theirs. Holds O(log n) state (the frontier), so the
//! export-bundle verifier and the store verifier share it unchanged.

use crate::checkpoint::{self, Checkpoint};
use crate::event::Event;
use crate::keys::KeyRing;
use crate::merkle::{self, Frontier};
use crate::record::{chain_hash, Record, ZERO_HASH};
use crate::verify::error::{VerifyError, VerifySummary};
use crate::Hash;

/// Verifies records one at a time against a pinned ledger key.
#[derive(Debug, Clone)]
pub struct StreamVerifier {
    pinned: [u8; 32],
    origin: Option<String>,
    keys: Option<KeyRing>,
    frontier: Frontier,
    prev_hash: Hash,
    last_ts: u64,
    checkpoints_verified: u64,
    latest_checkpoint_size: Option<u64>,
}

impl StreamVerifier {
    /// Starts before record 0, trusting only `pinned_ledger_key`.
    pub fn new(pinned_ledger_key: [u8; 32]) -> Self {
        StreamVerifier {
            pinned: pinned_ledger_key,
            origin: None,
            keys: None,
            frontier: Frontier::new(),
            prev_hash: ZERO_HASH,
            last_ts: 0,
            checkpoints_verified: 0,
            latest_checkpoint_size: None,
        }
    }

    /// Records verified so far (= index of the next record).
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root over the records verified so far.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Chain hash of the last verified record (zeros before genesis).
    pub fn head_hash(&self) -> Hash {
        self.prev_hash
    }

    /// Timestamp of the last verified record.
    pub fn last_timestamp_ms(&self) -> u64 {
        self.last_ts
    }

    /// Origin from genesis, once record 0 is verified.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Verifies the next record's bytes; see [`StreamVerifier::push_record_with`].
    pub fn push_record(&mut self, bytes: &[u8]) -> Result<Record, VerifyError> {
        self.push_record_with(bytes, |_, _, _| {})
    }

    /// Verifies the next record: canonical decoding, index, chain link,
    /// genesis rules and pinned key, timestamp order; then extends the tree.
    /// `emit(level, index, hash)` receives every tree node the record
    /// completes (the store verifier compares them with its node table).
    pub fn push_record_with(
        &mut self,
        bytes: &[u8],
        emit: impl FnMut(u8, u64, &Hash),
    ) -> Result<Record, VerifyError> {
        let expected = self.frontier.size();
        let record = Record::decode(bytes).map_err(|source| VerifyError::Decode {
            index: expected,
            source,
        })?;
        if record.encode() != bytes {
            return Err(VerifyError::NonCanonical { index: expected });
        }
        if record.index != expected {
            return Err(VerifyError::IndexMismatch {
                expected,
                found: record.index,
            });
        }
        if record.prev_hash != self.prev_hash {
            return Err(VerifyError::ChainBroken {
                index: expected,
                expected: self.prev_hash,
                found: record.prev_hash,
            });
        }
        match (&record.event, expected) {
            (Event::Genesis(g), 0) => {
                let key = g
                    .ledger_key()
                    .map_err(|why| VerifyError::GenesisKeyMismatch {
                        expected: self.pinned,
                        found: why.to_owned(),
                    })?;
                if key != self.pinned {
                    return Err(VerifyError::GenesisKeyMismatch {
                        expected: self.pinned,
                        found: hex::encode(key),
                    });
                }
                self.origin = Some(g.origin.clone());
                self.keys = KeyRing::from_genesis(g).ok();
            }
            (other, 0) => {
                return Err(VerifyError::MissingGenesis {
                    found: other.kind(),
                })
            }
            (Event::Genesis(_), index) => return Err(VerifyError::GenesisNotFirst { index }),
            (event, _) => {
                if record.timestamp_ms < self.last_ts {
                    return Err(VerifyError::TimestampBackwards {
                        index: expected,
                        previous: self.last_ts,
                        found: record.timestamp_ms,
                    });
                }
                if let (Event::KeyRotated(r), Some(ring)) = (event, self.keys.as_mut()) {
                    ring.apply(r).map_err(|source| VerifyError::KeyRotation {
                        index: expected,
                        source,
                    })?;
                }
                if let (Event::CaImported(c), Some(ring)) = (event, self.keys.as_ref()) {
                    check_ca_import(ring, c).map_err(|reason| VerifyError::CaImport {
                        index: expected,
                        reason,
                    })?;
                }
            }
        }
        self.frontier.push(merkle::leaf_hash(bytes), emit);
        self.prev_hash = chain_hash(bytes);
        self.last_ts = record.timestamp_ms;
        Ok(record)
    }

    /// The keys in force after the records verified so far (genesis keys with
    /// every verified rotation applied); `None` before genesis.
    pub fn keys(&self) -> Option<&KeyRing> {
        self.keys.as_ref()
    }

    /// The ledger key in force at the current size: the pinned key until a
    /// ledger-role rotation, then the rotation's new key (FORMAT.md §7.1).
    pub fn ledger_key(&self) -> [u8; 32] {
        self.keys
            .as_ref()
            .map(KeyRing::ledger_key)
            .unwrap_or(self.pinned)
    }

    /// Verifies a signed checkpoint at the current size: a valid signature by
    /// the ledger key in force at this size under key name = origin (other
    /// signatures ignored), the body's origin and size, and its root against
    /// the recomputed root.
    pub fn check_checkpoint(&mut self, note_text: &str) -> Result<Checkpoint, VerifyError> {
        let size = self.frontier.size();
        if self.latest_checkpoint_size == Some(size) {
            return Err(VerifyError::CheckpointDuplicate { size });
        }
        let key = self.ledger_key();
        let Some(origin) = self.origin.as_deref() else {
            return Err(VerifyError::CheckpointBeyondLedger {
                size,
                ledger_size: size,
            });
        };
        let cp = checkpoint::open(note_text, origin, &key)
            .map_err(|source| VerifyError::CheckpointNote { size, source })?;
        if cp.size != size {
            return Err(VerifyError::CheckpointSizeMismatch {
                expected: size,
                found: cp.size,
            });
        }
        let root = self.frontier.root();
        if cp.root != root {
            return Err(VerifyError::CheckpointRootMismatch {
                size,
                expected: root,
                found: cp.root,
            });
        }
        self.checkpoints_verified += 1;
        self.latest_checkpoint_size = Some(size);
        Ok(cp)
    }

    /// Ends the stream; at least the genesis record must have been verified.
    pub fn finish(self) -> Result<VerifySummary, VerifyError> {
        let Some(origin) = self.origin else {
            return Err(VerifyError::Empty);
        };
        Ok(VerifySummary {
            origin,
            records: self.frontier.size(),
            checkpoints_verified: self.checkpoints_verified,
            latest_checkpoint_size: self.latest_checkpoint_size,
            root: self.frontier.root(),
            head_hash: self.prev_hash,
        })
    }
}

/// FORMAT.md §7.2: an imported CA certificate is for the CA key in force and names its
/// issuers up to a root.
fn check_ca_import(
    ring: &crate::keys::KeyRing,
    c: &crate::event::CaImported,
) -> Result<(), &'static str> {
    let current = ring
        .current(crate::event::KeyRole::Ca)
        .ok_or("no CA key in force")?;
    if c.key.role != crate::event::KeyRole::Ca || c.key.spki_der != current.spki_der {
        return Err("the certificate is not for the CA key in force");
    }
    if c.ca_certificate_der.is_empty() || c.issuer_chain_der.iter().any(Vec::is_empty) {
        return Err("empty certificate");
    }
    if c.issuer_chain_der.is_empty() {
        return Err("no issuer chain");
    }
    Ok(())
}
