//! credmint's append-only ledger: hash-chained, RFC 9162 Merkle-tree records
//! in a redb file, C2SP signed-note checkpoints, and an offline verifier.
//!
//! Layout:
//! - [`codec`]: canonical byte encoding primitives (big-endian, length-prefixed, strict reader).
//! - [`event`], [`record`]: typed events and the record that carries one; `record.encode()` is
//!   what gets chained, hashed into the tree and verified.
//! - [`merkle`]: pure RFC 9162 hashing, proofs and verification, plus the frontier.
//! - [`note`], [`checkpoint`]: C2SP signed note and tlog-checkpoint.
//! - [`signer`]: the signing seam (HSM in the appliance, ed25519-dalek in tests).
//! - [`store`]: the redb file; [`verify`]: whole-ledger verification, and the semantic rules.
//! - [`governance`]: the dual-control independence rule shared by appliance and auditor.
//! - [`keys`]: the keys in force per role across rotations (shared by store and verifier).
//! - [`export`]: the auditor's bundle (writer and streaming reader).
//! - [`tiles`]: C2SP tlog-tiles paths and bytes (pure; the appliance writes the files).
//! - [`audit`]: bundle verification, blast-radius queries and the `credmint-audit` CLI.
//!
//! The byte formats are specified in `FORMAT.md`. This crate has no async
//! runtime, no network and no HSM code, so an auditor can build it alone.

pub mod audit;
pub mod checkpoint;
pub mod codec;
pub mod cosignature;
pub mod error;
pub mod event;
pub mod export;
#[cfg(test)]
mod format_doc;
pub mod governance;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod receipt;
pub mod record;
pub mod signer;
pub mod store;
pub mod tiles;
pub mod verify;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

pub use checkpoint::Checkpoint;
pub use error::{AppendError, DecodeError, NoteError, ProofError, StoreError};
pub use event::{CertificateIssued, Event, Genesis, KeyAlgorithm, KeyInfo, KeyRole, Revoked};
pub use record::{NewEntry, Record};
pub use signer::{DalekSigner, Signer, SignerError};
pub use store::Ledger;
pub use verify::{verify_file, verify_ledger, StreamVerifier, VerifyError, VerifySummary};
