//! C2SP tlog-checkpoint v1.0.0 (<https://c2sp.org/tlog-checkpoint>) body,
//! carried inside a signed note whose key name is the origin.
//!
//! Body: `<origin>\n<decimal size>\n<base64 root>\n` then optional non-empty
//! extension lines. Size and root must come from the same signed checkpoint:
//! a root does not commit to a size.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::error::NoteError;
use crate::note::{self, Note, NoteVerifier};
use crate::signer::Signer;
use crate::Hash;

/// A checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin (first line).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash of the tree of `size` leaves.
    pub root: Hash,
    /// Optional extension lines (without newlines), each non-empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text for this checkpoint.
    pub fn to_body(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a checkpoint body strictly: decimal size without leading zeros,
    /// canonical padded base64 of exactly 32 bytes, non-empty lines.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let lines = text
            .strip_suffix('\n')
            .ok_or(NoteError::Checkpoint("body must end in a newline"))?;
        let mut it = lines.split('\n');
        let origin = it.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("empty origin line"));
        }
        let size_str = it
            .next()
            .ok_or(NoteError::Checkpoint("missing size line"))?;
        let size = parse_decimal(size_str)
            .ok_or(NoteError::Checkpoint("size is not a canonical decimal u64"))?;
        let root_str = it
            .next()
            .ok_or(NoteError::Checkpoint("missing root hash line"))?;
        let root_raw = B64
            .decode(root_str)
            .map_err(|_| NoteError::Checkpoint("root hash is not standard base64"))?;
        let root: Hash = root_raw
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::Checkpoint("root hash is not 32 bytes"))?;
        if B64.encode(root) != root_str {
            return Err(NoteError::Checkpoint("root hash base64 is not canonical"));
        }
        let mut extensions = Vec::new();
        for e in it {
            if e.is_empty() {
                return Err(NoteError::Checkpoint("empty extension line"));
            }
            extensions.push(e.to_owned());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the body with `signer` under key name = origin and returns the note.
    pub fn sign(&self, signer: &dyn Signer) -> Result<String, NoteError> {
        note::sign_note(&self.to_body(), &self.origin, signer)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Opens a signed checkpoint: parses the note, requires a valid signature by
/// `public_key` under key name `origin` (other signatures are ignored), and
/// requires the body's origin to be `origin`.
pub fn open(note_text: &str, origin: &str, public_key: &[u8; 32]) -> Result<Checkpoint, NoteError> {
    let verifier = NoteVerifier::new(origin, *public_key)?;
    let note = Note::parse(note_text)?;
    note.verify(std::slice::from_ref(&verifier))?;
    let cp = Checkpoint::parse_body(&note.text)?;
    if cp.origin != origin {
        return Err(NoteError::OriginMismatch {
            expected: origin.to_owned(),
            found: cp.origin,
        });
    }
    Ok(cp)
}
