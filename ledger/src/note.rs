//! C2SP signed note (<https://c2sp.org/signed-note>): text, blank line,
//! signature lines `— <name> <base64(key_id || signature)>`.
//!
//! Only Ed25519 keys (type byte 0x01) are verified. Signatures by keys the
//! caller does not know (witness cosignatures) are kept but ignored, as the
//! spec requires. The signed message is the text including its final newline.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::NoteError;
use crate::event::is_valid_key_name;
use crate::signer::{verify_ed25519, Signer};

/// Signature type byte of Ed25519 note keys.
pub const ALG_ED25519: u8 = 0x01;
/// Signature lines start with U+2014 EM DASH and a space.
pub const SIG_PREFIX: &str = "\u{2014} ";
/// At most this many signature lines are parsed (as Go's note package).
pub const MAX_SIGNATURES: usize = 100;

/// Key ID: first 4 bytes (big-endian) of SHA-256(name || 0x0A || 0x01 || public key).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 note verifier: name, key ID and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    /// Key name.
    pub name: String,
    /// Key ID (derived, checked on parse).
    pub key_id: u32,
    /// Raw Ed25519 public key.
    pub public_key: [u8; 32],
}

impl NoteVerifier {
    /// Verifier for `name` and a raw Ed25519 key.
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        Ok(NoteVerifier {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses `name+hex8+base64(0x01 || key)`. The base64 may contain '+', so
    /// only the first two '+' split.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let (name, found, public_key) = parse_vkey(vkey, ALG_ED25519)?;
        let v = NoteVerifier::new(name, public_key)?;
        if v.key_id != found {
            return Err(NoteError::KeyIdMismatch {
                expected: v.key_id,
                found,
            });
        }
        Ok(v)
    }

    /// The verifier key string `name+hex8+base64(0x01 || key)`.
    pub fn to_key_string(&self) -> String {
        verifier_key_string(&self.name, &self.public_key)
    }
}

/// Splits a verifier key `name+hex8+base64(alg || key)` of signature type `alg` with a
/// 32-byte key into (name, the key ID as written, key). The caller checks the key ID,
/// whose derivation depends on the type.
pub fn parse_vkey(vkey: &str, alg: u8) -> Result<(&str, u32, [u8; 32]), NoteError> {
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey("expected name+hex8+base64"));
    };
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    if id_hex.len() != 8
        || !id_hex
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(NoteError::MalformedKey(
            "key id must be 8 lowercase hex digits",
        ));
    }
    let found = u32::from_str_radix(id_hex, 16).map_err(|_| NoteError::MalformedKey("key id"))?;
    let raw = B64
        .decode(b64)
        .map_err(|_| NoteError::MalformedKey("key is not standard base64"))?;
    let Some((&found_alg, key)) = raw.split_first() else {
        return Err(NoteError::MalformedKey("empty key"));
    };
    if found_alg != alg {
        return Err(NoteError::MalformedKey(if alg == ALG_ED25519 {
            "unsupported key type (only Ed25519, 0x01)"
        } else {
            "unsupported key type (only Ed25519 cosignature/v1, 0x04)"
        }));
    }
    let public_key: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::MalformedKey("Ed25519 key must be 32 bytes"))?;
    Ok((name, found, public_key))
}

/// The verifier key string `name+hex8+base64(0x01 || key)` (lowercase, zero-padded hex).
pub fn verifier_key_string(name: &str, public_key: &[u8; 32]) -> String {
    let mut typed = vec![ALG_ED25519];
    typed.extend_from_slice(public_key);
    format!(
        "{}+{:08x}+{}",
        name,
        key_id(name, public_key),
        B64.encode(typed)
    )
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID (first 4 bytes of the blob).
    pub key_id: u32,
    /// The signature bytes after the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, including its trailing newline.
    pub fn to_line(&self) -> String {
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob))
    }
}

/// A parsed (not yet verified) signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Text, ending in a newline; this is the signed message.
    pub text: String,
    /// Signature lines in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note. The text is everything up to and including the
    /// newline before the last blank line.
    pub fn parse(msg: &str) -> Result<Self, NoteError> {
        if has_control_other_than_newline(msg) {
            return Err(NoteError::Malformed("control character other than newline"));
        }
        let split = msg
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before signatures"))?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "signature block must end in a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() >= MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
                "signature line must start with an em dash and a space",
            ))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed(
                "signature line needs a name and a signature",
            ))?;
            if !is_valid_key_name(name) {
                return Err(NoteError::InvalidName(name.to_owned()));
            }
            let blob = B64
                .decode(b64)
                .map_err(|_| NoteError::Malformed("signature is not standard base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("signature shorter than 5 bytes"));
            }
            let (id, sig) = blob.split_at(4);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
                signature: sig.to_vec(),
            });
        }
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Formats the note: text, blank line, signature lines.
    pub fn format(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }

    /// Checks every signature by a known verifier (same name and key ID) and
    /// returns the verifiers that signed. A known key with a bad signature is
    /// an error; unknown keys are ignored; no known signature is an error.
    pub fn verify<'v>(
        &self,
        known: &'v [NoteVerifier],
    ) -> Result<Vec<&'v NoteVerifier>, NoteError> {
        let mut ok: Vec<&NoteVerifier> = Vec::new();
        for s in &self.signatures {
            let Some(v) = known
                .iter()
                .find(|v| v.name == s.name && v.key_id == s.key_id)
            else {
                continue;
            };
            if ok.iter().any(|o| std::ptr::eq(*o, v)) {
                continue;
            }
            if !verify_ed25519(&v.public_key, self.text.as_bytes(), &s.signature) {
                return Err(NoteError::InvalidSignature {
                    name: s.name.clone(),
                    key_id: s.key_id,
                });
            }
            ok.push(v);
        }
        if ok.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(ok)
    }
}

/// Whether `s` holds a control character other than `\n`: C0, DEL (U+007F) or C1
/// (U+0080..U+009F), i.e. Unicode category Cc. The whole note is checked, signature lines
/// included, so a cosignature we ignore cannot smuggle a control character to a terminal or
/// a stricter parser that reads the same note.
pub fn has_control_other_than_newline(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

/// Checks note text rules: ends in a newline, no control characters other
/// than newline, no blank line at the end (the parser would split there).
pub fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end in a newline"));
    }
    if has_control_other_than_newline(text) {
        return Err(NoteError::Malformed("control character other than newline"));
    }
    if text.ends_with("\n\n") || text == "\n" {
        return Err(NoteError::Malformed("text must not end with a blank line"));
    }
    Ok(())
}

/// Signs `text` with `signer` under key `name` and returns the signature.
pub fn sign(text: &str, name: &str, signer: &dyn Signer) -> Result<NoteSignature, NoteError> {
    check_text(text)?;
    if !is_valid_key_name(name) {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    let sig = signer.sign(text.as_bytes())?;
    Ok(NoteSignature {
        name: name.to_owned(),
        key_id: key_id(name, &signer.public_key()),
        signature: sig.to_vec(),
    })
}

/// Signs `text` and returns the complete one-signature note.
pub fn sign_note(text: &str, name: &str, signer: &dyn Signer) -> Result<String, NoteError> {
    let s = sign(text, name, signer)?;
    Ok(Note {
        text: text.to_owned(),
        signatures: vec![s],
    }
    .format())
}
