//! Error types, one per kind of operation, so callers match only what their
//! call can produce (decode, proof, note, store, append). `VerifyError` lives
//! in `verify/` next to the checks that raise it.

use crate::Hash;

/// Hex display helper so errors show hashes the way the format doc does.
pub(crate) fn hx(h: &Hash) -> String {
    hex::encode(h)
}

/// Bytes that are not a canonical encoding of the expected structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("input ends inside {field}: needed {needed} bytes, {remaining} left")]
    UnexpectedEnd {
        /// Field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix exceeds the field's documented maximum.
    #[error("{field} is {len} bytes, more than the maximum {max}")]
    TooLong {
        /// Field being read.
        field: &'static str,
        /// Declared length.
        len: usize,
        /// Documented maximum.
        max: usize,
    },
    /// A vector count exceeds the documented maximum.
    #[error("{field} has {count} elements, more than the maximum {max}")]
    TooMany {
        /// Field being read.
        field: &'static str,
        /// Declared count.
        count: usize,
        /// Documented maximum.
        max: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Field being read.
        field: &'static str,
    },
    /// An enum tag has no meaning in this format version.
    #[error("unknown {field} tag {tag}")]
    UnknownTag {
        /// Field being read.
        field: &'static str,
        /// The tag found.
        tag: u16,
    },
    /// The record starts with a format version this crate does not know.
    #[error("unsupported record format version {0}")]
    UnsupportedVersion(u8),
    /// A field decoded but breaks a documented rule.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// Field being read.
        field: &'static str,
        /// The broken rule.
        reason: &'static str,
    },
    /// Bytes were left after the structure ended.
    #[error("{count} trailing bytes after the end of the encoding")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
}

/// A Merkle proof or proof request that does not check out (RFC 9162 §2.1.3/§2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The tree sizes cannot be compared (old larger than new, or beyond the log).
    #[error("invalid tree sizes: {reason} (sizes {first} and {second})")]
    InvalidSizes {
        /// First size.
        first: u64,
        /// Second size.
        second: u64,
        /// Why they are invalid.
        reason: &'static str,
    },
    /// The proof has fewer hashes than the tree shape requires.
    #[error("proof too short: ran out of hashes")]
    TooShort,
    /// The proof has more hashes than the tree shape allows.
    #[error("proof too long: {extra} unused hashes")]
    TooLong {
        /// Number of hashes left over.
        extra: usize,
    },
    /// The proof must be empty for these sizes but is not.
    #[error("proof must be empty for these sizes, has {len} hashes")]
    NotEmpty {
        /// Proof length given.
        len: usize,
    },
    /// The proof recomputes a different root than the trusted one.
    #[error("root mismatch: expected {}, computed {}", hx(expected), hx(found))]
    RootMismatch {
        /// The trusted root passed in.
        expected: Hash,
        /// The root the proof computes.
        found: Hash,
    },
}

/// A signed note, checkpoint body or verifier key that is malformed or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note text or signature block breaks the signed-note grammar.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// A key name is empty or contains a space or '+'.
    #[error("invalid key name {0:?}")]
    InvalidName(String),
    /// A verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    /// A verifier key's ID does not match its name and key.
    #[error("verifier key id {found:08x} does not match computed {expected:08x}")]
    KeyIdMismatch {
        /// Computed from name and key.
        expected: u32,
        /// Written in the key string.
        found: u32,
    },
    /// A signature by a known key does not verify.
    #[error("invalid signature by {name}+{key_id:08x}")]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        key_id: u32,
    },
    /// No signature by any known key.
    #[error("note has no signature by a known key")]
    NoKnownSignature,
    /// The signer refused or failed.
    #[error(transparent)]
    Signer(#[from] crate::signer::SignerError),
    /// The checkpoint body is malformed.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
    /// The checkpoint's origin is not the expected one.
    #[error("checkpoint origin {found:?}, expected {expected:?}")]
    OriginMismatch {
        /// Expected origin.
        expected: String,
        /// Origin in the checkpoint.
        found: String,
    },
}

/// Failures of the redb-backed store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, transaction).
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// `create` found a ledger already in the file.
    #[error(
        "the file already holds a ledger (origin {origin:?}, {size} records); refusing to fork it"
    )]
    AlreadyExists {
        /// Origin of the existing ledger.
        origin: String,
        /// Its size.
        size: u64,
    },
    /// The file is being reopened after a storage failure (or could not be reopened
    /// yet); retry shortly.
    #[error("the ledger file is being reopened after a storage error")]
    Reopening,
    /// `open` found no ledger in the file.
    #[error("the file holds no ledger")]
    NotALedger,
    /// Stored data is inconsistent (a missing node, an undecodable record, ...).
    #[error("stored ledger is corrupt: {0}")]
    Corrupt(String),
    /// An entry cannot be appended as given.
    #[error("invalid entry {position} of the batch: {reason}")]
    InvalidEntry {
        /// Position in the batch.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A stored record does not decode.
    #[error("record {index}: {source}")]
    Decode {
        /// Record index.
        index: u64,
        /// Decoder error.
        #[source]
        source: DecodeError,
    },
    /// A proof request is invalid (index or sizes out of range).
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// Signing or formatting a checkpoint failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The signer's key is not the ledger key named in genesis.
    #[error(
        "signer key {} is not the ledger key {} named in genesis",
        hex::encode(found),
        hex::encode(expected)
    )]
    WrongLedgerKey {
        /// The ledger key in force (genesis' or the last rotation's).
        expected: [u8; 32],
        /// The signer's key.
        found: [u8; 32],
    },
    /// The signer returned a signature that does not verify under its own key.
    #[error("signer returned a signature that does not verify")]
    BadSignature,
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Failure of `append_batch_with`: either the store or the caller's projection.
#[derive(Debug, thiserror::Error)]
pub enum AppendError<E> {
    /// The store refused or failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The projection callback failed; nothing was written.
    #[error("projection failed: {0}")]
    Project(E),
}

impl StoreError {
    /// Short fixed category for metrics labels (bounded, value-free).
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::NotALedger => "not_a_ledger",
            StoreError::Reopening => "reopening",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::InvalidEntry { .. } => "invalid_entry",
            StoreError::Decode { .. } => "decode",
            StoreError::Proof(_) => "proof",
            StoreError::Note(_) => "note",
            StoreError::WrongLedgerKey { .. } => "wrong_ledger_key",
            StoreError::BadSignature => "bad_signature",
        }
    }
}
