//! Key history: the keys in force per role, from genesis through every
//! [`KeyRotated`] record (FORMAT.md §7.1). The store (to know which key may
//! sign checkpoints) and the verifier (to follow rotations from the pinned
//! genesis key) run this same code.

use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;

use crate::event::{Genesis, KeyAlgorithm, KeyInfo, KeyRole, KeyRotated};
use crate::signer::verify_ed25519;

/// Verifies `sig` over `msg` with `key`: pure Ed25519 (raw 64 bytes, strict) for
/// algorithm 1, ECDSA P-256 with SHA-256 (DER signature, SPKI public key) for algorithm 2.
/// `false` on any malformed key or signature.
pub fn verify_with(key: &KeyInfo, msg: &[u8], sig: &[u8]) -> bool {
    match key.algorithm {
        KeyAlgorithm::Ed25519 => match key.ed25519_raw() {
            Some(raw) => verify_ed25519(&raw, msg, sig),
            None => false,
        },
        KeyAlgorithm::EcdsaP256 => {
            let Ok(pk) = p256::PublicKey::from_public_key_der(&key.spki_der) else {
                return false;
            };
            let Ok(sig) = p256::ecdsa::Signature::from_der(sig) else {
                return false;
            };
            p256::ecdsa::VerifyingKey::from(&pk)
                .verify(msg, &sig)
                .is_ok()
        }
    }
}

/// Same role, algorithm and SPKI (the label is free text and not compared).
fn same_key(a: &KeyInfo, b: &KeyInfo) -> bool {
    a.role == b.role && a.algorithm == b.algorithm && a.spki_der == b.spki_der
}

/// Why a rotation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    /// `old_key` or `new_key` has another role than the rotation.
    #[error("old_key and new_key must have the rotation's role")]
    RoleMismatch,
    /// `old_key` is not the key of that role currently in force.
    #[error("old_key is not the key of that role in force")]
    NotCurrent,
    /// The new key equals the old one.
    #[error("new_key equals old_key")]
    Unchanged,
    /// A new ledger key must be an RFC 8410 Ed25519 key (checkpoints are Ed25519 notes).
    #[error("a ledger-role key must be an RFC 8410 Ed25519 key")]
    LedgerKeyNotEd25519,
    /// `old_signature` does not verify with `old_key`.
    #[error("old_signature does not verify with old_key")]
    OldSignature,
    /// `new_signature` does not verify with `new_key`.
    #[error("new_signature does not verify with new_key")]
    NewSignature,
    /// A token or ledger rotation carries certificate bytes. Only a CA rotation has a CA
    /// and a cross certificate; bytes elsewhere are signed but meaningless, so refusing
    /// them keeps one encoding per rotation.
    #[error("only a CA rotation carries certificates")]
    CertificatesOnNonCa,
}

impl RotationError {
    /// Short fixed name (exit reports, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            RotationError::RoleMismatch => "role_mismatch",
            RotationError::NotCurrent => "not_current",
            RotationError::Unchanged => "unchanged",
            RotationError::LedgerKeyNotEd25519 => "ledger_key_not_ed25519",
            RotationError::OldSignature => "old_signature",
            RotationError::NewSignature => "new_signature",
            RotationError::CertificatesOnNonCa => "certificates_on_non_ca",
        }
    }
}

/// The keys in force, per role. Genesis may list several keys of one role; a
/// rotation replaces exactly the one equal to its `old_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    origin: String,
    keys: Vec<KeyInfo>,
    ledger_key: [u8; 32],
}

impl KeyRing {
    /// The keys genesis pins. Fails when genesis names no single Ed25519 ledger key.
    pub fn from_genesis(g: &Genesis) -> Result<Self, &'static str> {
        Ok(KeyRing {
            origin: g.origin.clone(),
            keys: g.keys.clone(),
            ledger_key: g.ledger_key()?,
        })
    }

    /// The raw Ed25519 ledger key in force (signs checkpoints).
    pub fn ledger_key(&self) -> [u8; 32] {
        self.ledger_key
    }

    /// Every key in force.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// The first key in force with `role`.
    pub fn current(&self, role: KeyRole) -> Option<&KeyInfo> {
        self.keys.iter().find(|k| k.role == role)
    }

    /// Checks a rotation against the keys in force without applying it.
    pub fn check(&self, r: &KeyRotated) -> Result<usize, RotationError> {
        if r.old_key.role != r.role || r.new_key.role != r.role {
            return Err(RotationError::RoleMismatch);
        }
        let pos = self
            .keys
            .iter()
            .position(|k| same_key(k, &r.old_key))
            .ok_or(RotationError::NotCurrent)?;
        if r.new_key.spki_der == r.old_key.spki_der {
            return Err(RotationError::Unchanged);
        }
        if r.role != KeyRole::Ca
            && !(r.ca_certificate_der.is_empty() && r.cross_certificate_der.is_empty())
        {
            return Err(RotationError::CertificatesOnNonCa);
        }
        if r.role == KeyRole::Ledger && r.new_key.ed25519_raw().is_none() {
            return Err(RotationError::LedgerKeyNotEd25519);
        }
        let msg = r.signed_message(&self.origin);
        if !verify_with(&r.old_key, &msg, &r.old_signature) {
            return Err(RotationError::OldSignature);
        }
        if !verify_with(&r.new_key, &msg, &r.new_signature) {
            return Err(RotationError::NewSignature);
        }
        Ok(pos)
    }

    /// Checks and applies a rotation: the new key replaces the old one.
    pub fn apply(&mut self, r: &KeyRotated) -> Result<(), RotationError> {
        let pos = self.check(r)?;
        self.keys[pos] = r.new_key.clone();
        if let (KeyRole::Ledger, Some(raw)) = (r.role, r.new_key.ed25519_raw()) {
            self.ledger_key = raw;
        }
        Ok(())
    }
}
