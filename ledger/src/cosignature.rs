//! C2SP tlog-cosignature v1 (<https://c2sp.org/tlog-cosignature>): a witness's timestamped
//! Ed25519 statement that a checkpoint is the largest consistent tree it has seen for the
//! log. Byte-compatible with the public witness network (key type 0x04).
//!
//! A cosignature is a note signature line on the checkpoint:
//! `— <witness name> base64(key ID || u64 timestamp (big-endian) || Ed25519 signature)`,
//! the key ID being SHA-256(name || "\n" || 0x04 || key)[:4]. The signed message is
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint body (the note text,
//! final newline included, no signature lines).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::NoteError;
use crate::event::is_valid_key_name;
use crate::note::{parse_vkey, Note, NoteSignature};
use crate::signer::{verify_ed25519, Signer};

/// Signature type byte of Ed25519 cosignature/v1 keys.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Bytes of a cosignature blob after the key ID: timestamp and signature.
const SIGNATURE_LEN: usize = 8 + 64;

/// Key ID of a cosignature/v1 key: SHA-256(name || 0x0A || 0x04 || key)[:4].
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_COSIGNATURE_V1]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The message a witness signs for `body` (a checkpoint note's text) at `timestamp`.
pub fn signed_message(body: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{body}")
}

/// A witness's public key, as configured by whoever trusts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    /// Witness name (a schema-less URL by convention).
    pub name: String,
    /// Key ID, derived from name and key.
    pub key_id: u32,
    /// Raw Ed25519 public key.
    pub public_key: [u8; 32],
}

impl WitnessKey {
    /// The key of witness `name`.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<WitnessKey, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        Ok(WitnessKey {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses a verifier key `name+hex8+base64(0x04 || key)`.
    pub fn parse(vkey: &str) -> Result<WitnessKey, NoteError> {
        let (name, found, public_key) = parse_vkey(vkey, ALG_COSIGNATURE_V1)?;
        let k = WitnessKey::new(name, public_key)?;
        if k.key_id != found {
            return Err(NoteError::KeyIdMismatch {
                expected: k.key_id,
                found,
            });
        }
        Ok(k)
    }

    /// The verifier key string `name+hex8+base64(0x04 || key)`.
    pub fn to_key_string(&self) -> String {
        let mut typed = vec![ALG_COSIGNATURE_V1];
        typed.extend_from_slice(&self.public_key);
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(typed))
    }

    fn signed(&self, s: &NoteSignature) -> bool {
        s.name == self.name && s.key_id == self.key_id
    }
}

/// A verified cosignature: who, and when they said they saw the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// Witness name.
    pub witness: String,
    /// The witness's timestamp, Unix seconds.
    pub timestamp: u64,
}

/// Cosigns the checkpoint `body` as witness `name` at `timestamp`: the signature line,
/// newline included. Used by witnesses (and the tests' witness).
pub fn cosign(
    body: &str,
    name: &str,
    signer: &dyn Signer,
    timestamp: u64,
) -> Result<String, NoteError> {
    let key = WitnessKey::new(name, signer.public_key())?;
    let sig = signer.sign(signed_message(body, timestamp).as_bytes())?;
    let mut signature = timestamp.to_be_bytes().to_vec();
    signature.extend_from_slice(&sig);
    Ok(NoteSignature {
        name: key.name,
        key_id: key.key_id,
        signature,
    }
    .to_line())
}

/// The cosignatures on `note` (a signed checkpoint) by the `witnesses` given, one per
/// witness. Lines by other keys are ignored (signed-note rules); a line by a known
/// witness that does not verify, or whose timestamp exceeds 2^63-1, is an error: it is
/// evidence that something is wrong, not a signature to skip.
pub fn verify(note: &str, witnesses: &[WitnessKey]) -> Result<Vec<Cosignature>, NoteError> {
    let parsed = Note::parse(note)?;
    let mut found: Vec<Cosignature> = Vec::new();
    for s in &parsed.signatures {
        let Some(w) = witnesses.iter().find(|w| w.signed(s)) else {
            continue;
        };
        let bad = || NoteError::InvalidSignature {
            name: s.name.clone(),
            key_id: s.key_id,
        };
        if s.signature.len() != SIGNATURE_LEN {
            return Err(bad());
        }
        let (ts, sig) = s.signature.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().map_err(|_| bad())?);
        if timestamp > i64::MAX as u64 {
            return Err(bad());
        }
        let message = signed_message(&parsed.text, timestamp);
        if !verify_ed25519(&w.public_key, message.as_bytes(), sig) {
            return Err(bad());
        }
        if !found.iter().any(|c| c.witness == w.name) {
            found.push(Cosignature {
                witness: w.name.clone(),
                timestamp,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::DalekSigner;

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn witness(seed: u8, name: &str) -> (DalekSigner, WitnessKey) {
        let signer = DalekSigner::from_seed([seed; 32]);
        let key = WitnessKey::new(name, signer.public_key()).unwrap();
        (signer, key)
    }

    fn note_with(lines: &[String]) -> String {
        let log = DalekSigner::from_seed([9; 32]);
        let mut note = crate::note::sign_note(BODY, "example.com/behind-the-sofa", &log).unwrap();
        for l in lines {
            note.push_str(l);
        }
        note
    }

    #[test]
    fn the_signed_message_is_the_specs_example() {
        assert_eq!(
            signed_message(BODY, 1679315147),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
    }

    #[test]
    fn cosignatures_verify_and_strangers_are_ignored() {
        let (s1, k1) = witness(1, "witness.example/w1");
        let (s2, k2) = witness(2, "witness.example/w2");
        let (s3, _) = witness(3, "witness.example/w3");
        let lines = [
            cosign(BODY, &k1.name, &s1, 1700000000).unwrap(),
            cosign(BODY, "witness.example/w3", &s3, 1700000001).unwrap(),
            cosign(BODY, &k2.name, &s2, 1700000002).unwrap(),
        ];
        let note = note_with(&lines);
        let got = verify(&note, &[k1.clone(), k2.clone()]).unwrap();
        assert_eq!(
            got,
            vec![
                Cosignature {
                    witness: k1.name.clone(),
                    timestamp: 1700000000
                },
                Cosignature {
                    witness: k2.name.clone(),
                    timestamp: 1700000002
                },
            ]
        );
        // The blob is key ID || timestamp || signature: 4 + 8 + 64 bytes.
        let blob = B64
            .decode(lines[0].trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(blob.len(), 76);
        assert_eq!(&blob[..4], &k1.key_id.to_be_bytes());
        assert_eq!(&blob[4..12], &1700000000u64.to_be_bytes());
        assert!(verify(&note_with(&[]), &[k1]).unwrap().is_empty());
    }

    #[test]
    fn a_cosignature_over_another_body_or_time_fails() {
        let (s1, k1) = witness(1, "witness.example/w1");
        let other = BODY.replace("20852163", "20852164");
        let forged = cosign(&other, &k1.name, &s1, 1700000000).unwrap();
        assert!(matches!(
            verify(&note_with(&[forged]), std::slice::from_ref(&k1)),
            Err(NoteError::InvalidSignature { .. })
        ));
        // Re-timestamped: the same signature under a different time.
        let line = cosign(BODY, &k1.name, &s1, 1700000000).unwrap();
        let mut blob = B64
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        blob[11] ^= 1;
        let moved = format!("\u{2014} {} {}\n", k1.name, B64.encode(blob));
        assert!(verify(&note_with(&[moved]), &[k1]).is_err());
    }

    #[test]
    fn vkeys_round_trip_and_refuse_the_wrong_type() {
        let (_, k1) = witness(1, "witness.example/w1");
        let text = k1.to_key_string();
        assert_eq!(WitnessKey::parse(&text).unwrap(), k1);
        // A log (0x01) key with the same material is not a witness key.
        let log_key = crate::note::verifier_key_string(&k1.name, &k1.public_key);
        assert!(WitnessKey::parse(&log_key).is_err());
        let tampered = text.replacen(&format!("{:08x}", k1.key_id), "00000000", 1);
        assert!(matches!(
            WitnessKey::parse(&tampered),
            Err(NoteError::KeyIdMismatch { .. })
        ));
    }
}
