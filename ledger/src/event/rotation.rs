//! Key rotation: the new key, introduced by the old one and proving possession itself.

use super::{EventBody, KeyInfo, KeyRole, MAX_CERT};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Maximum length of a rotation signature (DER ECDSA or raw Ed25519).
pub const MAX_SIGNATURE: usize = 256;

/// Domain separation prefix of the message both keys sign.
pub const ROTATION_CONTEXT: &[u8] = b"credmint-key-rotation:v1\n";

/// A key of `role` was replaced. Both `old_signature` (by the key being retired) and
/// `new_signature` (by the new key) sign [`KeyRotated::signed_message`], so an auditor who
/// pins only the genesis keys can follow every later key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotated {
    pub role: KeyRole,
    pub old_key: KeyInfo,
    pub new_key: KeyInfo,
    /// For role CA: DER of the new CA certificate; empty otherwise.
    pub ca_certificate_der: Vec<u8>,
    /// For role CA: the new CA key certified by the old CA (keeps old chains verifying
    /// during overlap); empty otherwise.
    pub cross_certificate_der: Vec<u8>,
    pub old_signature: Vec<u8>,
    pub new_signature: Vec<u8>,
}

impl KeyRotated {
    /// `ROTATION_CONTEXT || origin || 0x0A || body-without-signatures`: what both keys sign.
    /// Signatures are Ed25519 over these bytes, or ECDSA P-256 with SHA-256 (DER) over them.
    pub fn signed_message(&self, origin: &str) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(ROTATION_CONTEXT);
        w.fixed(origin.as_bytes());
        w.u8(0x0a);
        self.encode_unsigned(&mut w);
        w.finish()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        w.u8(self.role.to_u8());
        self.old_key.encode(w);
        self.new_key.encode(w);
        w.bytes(&self.ca_certificate_der);
        w.bytes(&self.cross_certificate_der);
    }
}

impl EventBody for KeyRotated {
    const TAG: u16 = 14;
    fn encode_body(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.bytes(&self.old_signature);
        w.bytes(&self.new_signature);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KeyRotated {
            role: KeyRole::from_u8(r.u8("rotation.role")?)?,
            old_key: KeyInfo::decode(r)?,
            new_key: KeyInfo::decode(r)?,
            ca_certificate_der: r.bytes("rotation.ca_certificate_der", MAX_CERT)?.to_vec(),
            cross_certificate_der: r
                .bytes("rotation.cross_certificate_der", MAX_CERT)?
                .to_vec(),
            old_signature: r.bytes("rotation.old_signature", MAX_SIGNATURE)?.to_vec(),
            new_signature: r.bytes("rotation.new_signature", MAX_SIGNATURE)?.to_vec(),
        })
    }
}
