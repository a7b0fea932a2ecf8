//! What the whole-ledger verifier reports.

use crate::error::{hx, DecodeError, NoteError, StoreError};
use crate::Hash;

/// Result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// Origin from genesis.
    pub origin: String,
    /// Number of records verified.
    pub records: u64,
    /// Number of checkpoints whose signature, size and root were verified.
    pub checkpoints_verified: u64,
    /// Size of the largest verified checkpoint.
    pub latest_checkpoint_size: Option<u64>,
    /// Merkle root over all records.
    pub root: Hash,
    /// SHA-256 of the last record (chain head).
    pub head_hash: Hash,
}

/// A verification failure: which record or checkpoint, which check, expected vs found.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The ledger could not be read at all.
    #[error("unreadable ledger: {0}")]
    Unreadable(#[from] StoreError),
    /// The ledger holds no records.
    #[error("ledger is empty: no genesis record")]
    Empty,
    /// A record does not decode.
    #[error("record {index}: does not decode: {source}")]
    Decode {
        /// Record position.
        index: u64,
        /// Decoder error.
        #[source]
        source: DecodeError,
    },
    /// A record decodes but re-encodes to different bytes.
    #[error("record {index}: encoding is not canonical")]
    NonCanonical {
        /// Record position.
        index: u64,
    },
    /// Indices are not 0..n contiguous (missing, duplicated or reordered record).
    #[error("record at position {expected}: index check failed: expected index {expected}, found {found}")]
    IndexMismatch {
        /// Expected index (the position).
        expected: u64,
        /// Index found (table key or the record's own field).
        found: u64,
    },
    /// `prev_hash` does not equal SHA-256 of the previous record.
    #[error(
        "record {index}: chain check failed: expected prev_hash {}, found {}",
        hx(expected),
        hx(found)
    )]
    ChainBroken {
        /// Record index.
        index: u64,
        /// SHA-256 of the previous record (zeros for record 0).
        expected: Hash,
        /// `prev_hash` in the record.
        found: Hash,
    },
    /// Record 0 is not a genesis event.
    #[error("record 0: genesis check failed: expected a genesis event, found {found}")]
    MissingGenesis {
        /// Event kind found.
        found: &'static str,
    },
    /// A genesis event appears after record 0.
    #[error("record {index}: genesis check failed: only record 0 may be genesis")]
    GenesisNotFirst {
        /// Record index.
        index: u64,
    },
    /// Genesis names no usable ledger key, or not the pinned one.
    #[error(
        "record 0: ledger key check failed: expected {}, found {found}",
        hex::encode(expected)
    )]
    GenesisKeyMismatch {
        /// The pinned key.
        expected: [u8; 32],
        /// Hex of the genesis ledger key, or why there is none.
        found: String,
    },
    /// A timestamp is earlier than the previous record's.
    #[error("record {index}: timestamp check failed: expected >= {previous}, found {found}")]
    TimestampBackwards {
        /// Record index.
        index: u64,
        /// Previous record's timestamp.
        previous: u64,
        /// This record's timestamp.
        found: u64,
    },
    /// The stored origin differs from genesis.
    #[error(
        "origin check failed: expected {expected:?} (genesis), found {found:?} (store metadata)"
    )]
    OriginMismatch {
        /// Origin in genesis.
        expected: String,
        /// Origin found elsewhere.
        found: String,
    },
    /// A stored Merkle node differs from the recomputed one.
    #[error("tree node ({level}, {index}): node check failed: expected {}, found {}", hx(expected), found.as_ref().map(hx).unwrap_or_else(|| "nothing".into()))]
    NodeMismatch {
        /// Node level.
        level: u8,
        /// Node index.
        index: u64,
        /// Recomputed hash.
        expected: Hash,
        /// Stored hash, if any.
        found: Option<Hash>,
    },
    /// A leaf hash is stored past the last record: records were removed.
    #[error("record {index}: completeness check failed: its leaf hash is stored but the record is missing")]
    MissingRecord {
        /// Index of the first missing record.
        index: u64,
    },
    /// A key rotation does not follow from the keys in force (FORMAT.md §7.1).
    #[error("record {index}: key rotation check failed: {source}")]
    KeyRotation {
        /// Record index.
        index: u64,
        /// What failed.
        #[source]
        source: crate::keys::RotationError,
    },
    /// A `ca_imported` record does not fit the keys in force (FORMAT.md §7.2).
    #[error("record {index}: CA import check failed: {reason}")]
    CaImport {
        /// Record index.
        index: u64,
        /// What failed.
        reason: &'static str,
    },
    /// A checkpoint's note, signature or body is invalid.
    #[error("checkpoint at size {size}: signature check failed: {source}")]
    CheckpointNote {
        /// Tree size the checkpoint is stored under.
        size: u64,
        /// What failed.
        #[source]
        source: NoteError,
    },
    /// A checkpoint's size differs from the size it is stored under / checked at.
    #[error("checkpoint at size {expected}: size check failed: body says {found}")]
    CheckpointSizeMismatch {
        /// Size it is stored under.
        expected: u64,
        /// Size in its body.
        found: u64,
    },
    /// A checkpoint's root differs from the recomputed root.
    #[error(
        "checkpoint at size {size}: root check failed: expected {}, found {}",
        hx(expected),
        hx(found)
    )]
    CheckpointRootMismatch {
        /// Tree size.
        size: u64,
        /// Recomputed root.
        expected: Hash,
        /// Root in the checkpoint.
        found: Hash,
    },
    /// A checkpoint is stored for a size the ledger does not reach.
    #[error("checkpoint at size {size}: size check failed: ledger has only {ledger_size} records")]
    CheckpointBeyondLedger {
        /// Checkpoint size.
        size: u64,
        /// Records in the ledger.
        ledger_size: u64,
    },
    /// A second checkpoint for a size already checkpointed. The store keeps one note per
    /// size (extra cosignatures are merged into it), so a repeat is spliced in; it is
    /// refused rather than skipped because the header and trailer counts are unsigned
    /// and a tolerated duplicate would make them meaningless.
    #[error("checkpoint at size {size}: a checkpoint for this size was already verified")]
    CheckpointDuplicate {
        /// Tree size.
        size: u64,
    },
}

impl VerifyError {
    /// Short fixed name of the failed check (metrics labels, exit codes).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Unreadable(_) => "unreadable",
            VerifyError::Empty => "empty",
            VerifyError::Decode { .. } => "decode",
            VerifyError::NonCanonical { .. } => "canonical",
            VerifyError::IndexMismatch { .. } => "index",
            VerifyError::ChainBroken { .. } => "chain",
            VerifyError::MissingGenesis { .. } | VerifyError::GenesisNotFirst { .. } => "genesis",
            VerifyError::GenesisKeyMismatch { .. } => "ledger_key",
            VerifyError::TimestampBackwards { .. } => "timestamp",
            VerifyError::OriginMismatch { .. } => "origin",
            VerifyError::NodeMismatch { .. } => "tree_node",
            VerifyError::MissingRecord { .. } => "completeness",
            VerifyError::KeyRotation { .. } => "key_rotation",
            VerifyError::CaImport { .. } => "ca_import",
            VerifyError::CheckpointNote { .. } => "checkpoint_signature",
            VerifyError::CheckpointSizeMismatch { .. }
            | VerifyError::CheckpointBeyondLedger { .. } => "checkpoint_size",
            VerifyError::CheckpointRootMismatch { .. } => "checkpoint_root",
            VerifyError::CheckpointDuplicate { .. } => "checkpoint_duplicate",
        }
    }

    /// Whether the failure means tampering/corruption (as opposed to an unreadable file).
    pub fn is_tampered(&self) -> bool {
        !matches!(self, VerifyError::Unreadable(_))
    }
}
