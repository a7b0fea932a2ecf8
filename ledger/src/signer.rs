//! The one signing seam: the appliance implements [`Signer`] over its HSM,
//! tests and tools use [`DalekSigner`]. Holds no key bytes in the trait, so an
//! HSM-backed implementation never has to export anything.

use ed25519_dalek::Signer as _;

/// An Ed25519 signing key held somewhere (HSM, memory).
pub trait Signer: Send + Sync {
    /// Raw 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// Signs `msg` (pure Ed25519, RFC 8032) and returns the 64-byte signature.
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignerError>;
}

/// The signer could not produce a signature (device lost, session closed, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signer failed: {0}")]
pub struct SignerError(pub String);

/// In-memory Ed25519 signer for tests and tools.
pub struct DalekSigner(pub ed25519_dalek::SigningKey);

impl DalekSigner {
    /// Signer from a 32-byte seed (deterministic keys for tests and vectors).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        DalekSigner(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
}

impl std::fmt::Debug for DalekSigner {
    // Written by hand so the private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DalekSigner")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl Signer for DalekSigner {
    fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], SignerError> {
        Ok(self.0.sign(msg).to_bytes())
    }
}

/// Verifies a pure Ed25519 signature with the strict rules (no malleable
/// signatures, no small-order keys); `false` on any malformed input.
pub fn verify_ed25519(public_key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.verify_strict(msg, &sig).is_ok()
}
