//! Operator minting under dual control: one operator requests a new operator (naming
//! the key), a different, independent operator approves and thereby issues the
//! certificate. The independence rule itself is [`crate::governance::may_approve`].

use sha2::{Digest, Sha256};

use super::{EventBody, MAX_NAME, MAX_SERIAL};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::event::MAX_TEXT;

/// Maximum length of the requested operator key's SPKI DER. Larger than
/// [`super::MAX_SPKI`] because an operator may bring an RSA key.
pub const MAX_OPERATOR_SPKI: usize = 4096;

/// An operator asked for a new operator `name` holding the key `spki_der`. Nothing is
/// issued until a different operator records an [`OperatorApproved`] naming this record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRequested {
    /// The new operator's name (acts as `operator:<name>` once approved).
    pub name: String,
    /// The requested key's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// SHA-256 of `spki_der`. Redundant on purpose: the approval names the key by this
    /// fingerprint, and the decoder refuses a record where the two disagree.
    pub key_fingerprint: [u8; 32],
    /// Ticket or change id justifying the new operator.
    pub approval_ref: String,
}

impl OperatorRequested {
    /// Builds a request, computing the fingerprint so callers cannot get it wrong.
    pub fn new(
        name: impl Into<String>,
        spki_der: Vec<u8>,
        approval_ref: impl Into<String>,
    ) -> Self {
        OperatorRequested {
            name: name.into(),
            key_fingerprint: Sha256::digest(&spki_der).into(),
            spki_der,
            approval_ref: approval_ref.into(),
        }
    }
}

impl EventBody for OperatorRequested {
    const TAG: u16 = 15;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.name);
        w.bytes(&self.spki_der);
        w.fixed(&self.key_fingerprint);
        w.str(&self.approval_ref);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r
            .non_empty_str("operator_request.name", MAX_NAME)?
            .to_owned();
        let spki_der = r
            .bytes("operator_request.spki_der", MAX_OPERATOR_SPKI)?
            .to_vec();
        let key_fingerprint = r.hash("operator_request.key_fingerprint")?;
        if <[u8; 32]>::from(Sha256::digest(&spki_der)) != key_fingerprint {
            return Err(DecodeError::Invalid {
                field: "operator_request.key_fingerprint",
                reason: "is not the SHA-256 of spki_der",
            });
        }
        let approval_ref = r
            .non_empty_str("operator_request.approval_ref", MAX_TEXT)?
            .to_owned();
        Ok(OperatorRequested {
            name,
            spki_der,
            key_fingerprint,
            approval_ref,
        })
    }
}

/// A second operator approved the [`OperatorRequested`] at `request_index`; the
/// certificate below was issued. One record for both, so an issued operator
/// certificate without its approval cannot exist in an honest ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorApproved {
    /// Ledger index of the approved `OperatorRequested` record.
    pub request_index: u64,
    /// The new operator's name (must equal the request's).
    pub name: String,
    /// Serial of the issued certificate (shares the serial space with tags 2 and 8).
    pub serial: Vec<u8>,
    /// notAfter of the issued certificate, Unix seconds.
    pub not_after: u64,
    /// SHA-256 of the certified key's SPKI (must equal the request's).
    pub key_fingerprint: [u8; 32],
}

impl EventBody for OperatorApproved {
    const TAG: u16 = 16;
    fn encode_body(&self, w: &mut Writer) {
        w.u64(self.request_index);
        w.str(&self.name);
        w.bytes(&self.serial);
        w.u64(self.not_after);
        w.fixed(&self.key_fingerprint);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OperatorApproved {
            request_index: r.u64("operator_approval.request_index")?,
            name: r
                .non_empty_str("operator_approval.name", MAX_NAME)?
                .to_owned(),
            serial: r.bytes("operator_approval.serial", MAX_SERIAL)?.to_vec(),
            not_after: r.u64("operator_approval.not_after")?,
            key_fingerprint: r.hash("operator_approval.key_fingerprint")?,
        })
    }
}
