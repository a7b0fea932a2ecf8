//! One ledger record: position, time, actor, chain link and event.
//!
//! The encoding produced here is *the* record: its SHA-256 is the chain hash
//! the next record carries, and `0x00 || encoding` is the Merkle leaf. The
//! decoder accepts exactly the bytes the encoder produces (FORMAT.md §2).

use sha2::{Digest, Sha256};

use crate::codec::{check_len, Reader, Writer};
use crate::error::DecodeError;
use crate::event::{Event, MAX_NAME};
use crate::{merkle, Hash};

/// First byte of every record encoding. Bump on any layout change.
pub const RECORD_FORMAT_VERSION: u8 = 1;
/// Maximum length of the actor string.
pub const MAX_ACTOR: usize = MAX_NAME;
/// `prev_hash` of record 0.
pub const ZERO_HASH: Hash = [0u8; 32];

/// A committed (or about to be committed) ledger record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the ledger, 0-based, contiguous.
    pub index: u64,
    /// Wall-clock time of the append, Unix milliseconds; never decreases.
    pub timestamp_ms: u64,
    /// Who caused the event (operator, integration, "system"); non-empty.
    pub actor: String,
    /// SHA-256 of the previous record's encoding; zeros for record 0.
    pub prev_hash: Hash,
    /// What happened.
    pub event: Event,
}

/// An event to append; the store assigns index and `prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Wall-clock time, Unix milliseconds; must not be earlier than the head's.
    pub timestamp_ms: u64,
    /// Who caused the event; non-empty.
    pub actor: String,
    /// What happened.
    pub event: Event,
}

impl NewEntry {
    /// The limits the store enforces at append (actor and every field of the event),
    /// checked alone, so a sequencer can refuse one entry without failing its batch.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_entry(&self.actor, &self.event)
    }
}

fn check_entry(actor: &str, event: &Event) -> Result<(), DecodeError> {
    if actor.is_empty() {
        return Err(DecodeError::Invalid {
            field: "record.actor",
            reason: "must not be empty",
        });
    }
    check_len("record.actor", actor.len(), MAX_ACTOR)?;
    event.check_limits()
}

impl Record {
    /// The canonical encoding (FORMAT.md §2).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(RECORD_FORMAT_VERSION);
        w.u64(self.index);
        w.u64(self.timestamp_ms);
        w.str(&self.actor);
        w.fixed(&self.prev_hash);
        self.event.encode(&mut w);
        w.finish()
    }

    /// Decodes a record, refusing anything but the canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("record.version")?;
        if version != RECORD_FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let record = Record {
            index: r.u64("record.index")?,
            timestamp_ms: r.u64("record.timestamp_ms")?,
            actor: r.non_empty_str("record.actor", MAX_ACTOR)?.to_owned(),
            prev_hash: r.hash("record.prev_hash")?,
            event: Event::decode(&mut r)?,
        };
        r.finish()?;
        Ok(record)
    }

    /// Chain hash: SHA-256 of the encoding. The next record's `prev_hash`.
    pub fn hash(&self) -> Hash {
        chain_hash(&self.encode())
    }

    /// RFC 9162 leaf hash: SHA-256(0x00 || encoding).
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.encode())
    }

    /// Checks the rules a writer must respect before encoding (limits, actor).
    pub(crate) fn check(&self) -> Result<(), DecodeError> {
        check_entry(&self.actor, &self.event)
    }
}

/// SHA-256 of a record's encoded bytes (the hash chain link).
pub fn chain_hash(encoded: &[u8]) -> Hash {
    Sha256::digest(encoded).into()
}
