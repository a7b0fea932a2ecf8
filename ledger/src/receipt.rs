//! Receipts: a C2SP tlog-proof (<https://c2sp.org/tlog-proof>) that one ledger record is
//! in a checkpointed tree, verifiable offline with the ledger key (and witness keys).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the record's encoding>
//! index <record index>
//! <base64 inclusion proof hash, leaf's sibling first>
//! ...
//!
//! <the checkpoint note, with the log's signature and any cosignatures>
//! ```
//!
//! The `extra` line carries the record itself. The spec calls extra data unauthenticated;
//! here it is authenticated by the proof, because the leaf the proof starts from is
//! SHA-256(0x00 || those bytes): a changed byte changes the root. So a receipt proves not
//! just "entry N exists" but "entry N is this issuance (or revocation)", with no bundle.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::checkpoint::{self, Checkpoint};
use crate::cosignature::{self, Cosignature, WitnessKey};
use crate::error::NoteError;
use crate::merkle;
use crate::record::Record;
use crate::Hash;

/// First line of every receipt.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// RFC 6962 proofs are at most 63 hashes for a tree below 2^63 leaves.
const MAX_PROOF: usize = 63;

/// Why a receipt does not prove what it says.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a tlog-proof: {0}")]
    Malformed(&'static str),
    #[error("the receipt carries no record (`extra` line)")]
    NoRecord,
    #[error("the record does not decode: {0}")]
    Record(String),
    #[error("the checkpoint: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("the inclusion proof: {0}")]
    Proof(#[from] crate::error::ProofError),
    #[error("the record says index {inner}, the receipt {outer}")]
    IndexMismatch { inner: u64, outer: u64 },
    #[error("{found} of the {need} witness cosignatures required")]
    Unwitnessed { found: usize, need: usize },
    /// A line by a required witness that does not verify.
    #[error("a witness cosignature: {0}")]
    Cosignature(NoteError),
}

/// A parsed receipt (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub index: u64,
    /// The record's encoding, from the `extra` line.
    pub record: Option<Vec<u8>>,
    pub proof: Vec<Hash>,
    /// The checkpoint note, verbatim.
    pub checkpoint: String,
}

/// What a verified receipt proves.
#[derive(Debug, Clone)]
pub struct Proven {
    pub record: Record,
    pub checkpoint: Checkpoint,
    /// Valid cosignatures by the witnesses asked for.
    pub cosignatures: Vec<Cosignature>,
}

impl Receipt {
    /// The text form.
    pub fn format(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(r) = &self.record {
            out.push_str(&format!("extra {}\n", B64.encode(r)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Receipt, ReceiptError> {
        let bad = ReceiptError::Malformed;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(bad("first line is not c2sp.org/tlog-proof@v1"));
        }
        let mut line = lines.next().ok_or(bad("no index line"))?;
        let mut record = None;
        if let Some(extra) = line.strip_prefix("extra ") {
            record = Some(B64.decode(extra).map_err(|_| bad("extra is not base64"))?);
            line = lines.next().ok_or(bad("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(bad("malformed index line"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == MAX_PROOF {
                return Err(bad("more than 63 proof hashes"));
            }
            let h = B64.decode(l).map_err(|_| bad("proof line is not base64"))?;
            proof.push(
                h.try_into()
                    .map_err(|_| bad("proof hash is not 32 bytes"))?,
            );
        }
        Ok(Receipt {
            index,
            record,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies the checkpoint's signature by `ledger_key` (named `origin`), the record's
    /// inclusion at `index` under it, and at least `min_witnesses` cosignatures among
    /// `witnesses`.
    pub fn verify(
        &self,
        origin: &str,
        ledger_key: &[u8; 32],
        witnesses: &[WitnessKey],
        min_witnesses: usize,
    ) -> Result<Proven, ReceiptError> {
        let bytes = self.record.as_ref().ok_or(ReceiptError::NoRecord)?;
        let cp = checkpoint::open(&self.checkpoint, origin, ledger_key)?;
        let record = Record::decode(bytes).map_err(|e| ReceiptError::Record(e.to_string()))?;
        if record.index != self.index {
            return Err(ReceiptError::IndexMismatch {
                inner: record.index,
                outer: self.index,
            });
        }
        merkle::verify_inclusion(
            self.index,
            cp.size,
            &merkle::leaf_hash(bytes),
            &self.proof,
            &cp.root,
        )?;
        let cosignatures =
            cosignature::verify(&self.checkpoint, witnesses).map_err(ReceiptError::Cosignature)?;
        if cosignatures.len() < min_witnesses {
            return Err(ReceiptError::Unwitnessed {
                found: cosignatures.len(),
                need: min_witnesses,
            });
        }
        Ok(Proven {
            record,
            checkpoint: cp,
            cosignatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Genesis, KeyInfo, KeyRole, Revoked};
    use crate::record::NewEntry;
    use crate::signer::{DalekSigner, Signer};
    use crate::store::Ledger;

    fn entry(event: Event) -> NewEntry {
        NewEntry {
            timestamp_ms: 1_700_000_000_000,
            actor: "operator:alice".into(),
            event,
        }
    }

    fn ledger_with(n: u8) -> (tempfile::TempDir, Ledger, DalekSigner) {
        let dir = tempfile::tempdir().unwrap();
        let signer = DalekSigner::from_seed([3; 32]);
        let genesis = Event::Genesis(Genesis {
            origin: "receipt.test/ledger".into(),
            keys: vec![KeyInfo::ed25519(
                KeyRole::Ledger,
                "ledger",
                &signer.public_key(),
            )],
            config_digest: [0; 32],
            ca_certificate_der: vec![0x30, 0x00],
        });
        let ledger = Ledger::create(&dir.path().join("l.redb"), entry(genesis)).unwrap();
        for i in 0..n {
            let revoked = Event::Revoked(Revoked {
                serial: vec![i + 1],
                reason: 1,
            });
            ledger.append_batch(vec![entry(revoked)]).unwrap();
        }
        (dir, ledger, signer)
    }

    fn receipt(ledger: &Ledger, signer: &DalekSigner, index: u64) -> Receipt {
        let note = ledger.sign_checkpoint(signer).unwrap();
        let size = ledger.size();
        Receipt {
            index,
            record: Some(ledger.record_bytes(index).unwrap().unwrap()),
            proof: ledger.inclusion_proof(index, size).unwrap(),
            checkpoint: note,
        }
    }

    #[test]
    fn receipts_round_trip_and_verify() {
        let (_d, ledger, signer) = ledger_with(6);
        let pk = signer.public_key();
        for index in [0, 1, 4, 6] {
            let r = receipt(&ledger, &signer, index);
            let text = r.format();
            assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
            let back = Receipt::parse(&text).unwrap();
            assert_eq!(back, r);
            let proven = back.verify(ledger.origin(), &pk, &[], 0).unwrap();
            assert_eq!(proven.record.index, index);
            assert_eq!(proven.checkpoint.size, 7);
        }
    }

    #[test]
    fn a_changed_record_proof_or_index_fails() {
        let (_d, ledger, signer) = ledger_with(6);
        let pk = signer.public_key();
        let origin = ledger.origin().to_string();
        let r = receipt(&ledger, &signer, 3);
        let mut edited = r.clone();
        let rec = edited.record.as_mut().unwrap();
        let last = rec.len() - 1;
        rec[last] ^= 1;
        assert!(edited.verify(&origin, &pk, &[], 0).is_err());
        let mut moved = r.clone();
        moved.index = 2;
        assert!(matches!(
            moved.verify(&origin, &pk, &[], 0),
            Err(ReceiptError::IndexMismatch { .. })
        ));
        let mut bent = r.clone();
        bent.proof[0][0] ^= 1;
        assert!(matches!(
            bent.verify(&origin, &pk, &[], 0),
            Err(ReceiptError::Proof(_))
        ));
        let stranger = DalekSigner::from_seed([9; 32]).public_key();
        assert!(matches!(
            r.verify(&origin, &stranger, &[], 0),
            Err(ReceiptError::Checkpoint(_))
        ));
        assert!(matches!(
            r.verify(&origin, &pk, &[], 1),
            Err(ReceiptError::Unwitnessed { found: 0, need: 1 })
        ));
        for bad in [
            "",
            "c2sp.org/tlog-proof@v2\nindex 1\n\ncp",
            "c2sp.org/tlog-proof@v1\nindex 01\n\ncp",
            "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\ncp",
            "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\ncp",
        ] {
            assert!(Receipt::parse(bad).is_err(), "{bad:?}");
        }
    }
}
