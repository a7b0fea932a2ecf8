//! `HsmKey`: one token key that signs certificates (through rcgen), tokens and ledger
//! checkpoints, without ever holding key bytes.
//!
//! SoftHSM (and most modules) offer CKM_ECDSA but not CKM_ECDSA_SHA256, so the digest is
//! computed here and the raw r||s result is DER-encoded only where X.509 wants DER.

use std::sync::{Arc, Mutex};

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{ObjectClass, ObjectHandle};
use sha2::{Digest, Sha256};

use super::error::{handle_stale, HsmError};
use super::keys::{public_key, require_key, PublicKey};
use super::pool::{Hsm, SessionError};
use crate::config::Algorithm;

/// A signing key that lives in the token, found by label.
#[derive(Clone)]
pub struct HsmKey {
    hsm: Arc<Hsm>,
    label: String,
    public: PublicKey,
    /// The private key's object handle and the handle epoch it was found in; a handle of
    /// an older epoch is never used (after a reconnection it may name another object).
    handle: Arc<Mutex<(u64, ObjectHandle)>>,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey")
            .field("label", &self.label)
            .field("algorithm", &self.public.algorithm)
            .finish()
    }
}

impl HsmKey {
    /// Looks up the key pair `label`; fails with `KeyNotFound` or `KeyMismatch`. The HSM
    /// then watches it: its probe reports the HSM degraded if the key disappears.
    pub fn load(hsm: Arc<Hsm>, label: &str, alg: Algorithm) -> Result<HsmKey, HsmError> {
        let public = public_key(&hsm, label, alg)?;
        let epoch = hsm.handles_epoch();
        let handle = require_key(&hsm, label, ObjectClass::PRIVATE_KEY)?;
        hsm.watch(label, &public);
        Ok(HsmKey {
            hsm,
            label: label.into(),
            public,
            handle: Arc::new(Mutex::new((epoch, handle))),
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn algorithm(&self) -> Algorithm {
        self.public.algorithm
    }
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
    pub fn hsm(&self) -> &Arc<Hsm> {
        &self.hsm
    }

    /// Signs `msg`: a 64-byte Ed25519 signature, or a raw 64-byte r||s ECDSA signature over
    /// SHA-256(msg) (the JWS ES256 form). Blocking: call from `spawn_blocking` in async code.
    pub fn sign_raw(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (mechanism, input) = match self.public.algorithm {
            Algorithm::Ed25519 => (
                Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                msg.to_vec(),
            ),
            Algorithm::EcdsaP256 => (Mechanism::Ecdsa, Sha256::digest(msg).to_vec()),
        };
        let sig = crate::metrics::timed(&self.hsm.metrics().sign, || {
            self.sign_with_handle(&mechanism, &input)
        })?;
        if sig.len() != 64 {
            return Err(HsmError::Malformed(format!(
                "{} signature of {} bytes",
                self.public.algorithm.name(),
                sig.len()
            )));
        }
        Ok(sig)
    }

    /// Signs `msg` in the encoding X.509, OCSP and CRLs carry: DER ECDSA-Sig-Value for
    /// P-256, the raw 64 bytes for Ed25519.
    pub fn sign_x509(&self, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
        let raw = self.sign_raw(msg)?;
        match self.public.algorithm {
            Algorithm::Ed25519 => Ok(raw),
            Algorithm::EcdsaP256 => ecdsa_raw_to_der(&raw),
        }
    }

    fn sign_with_handle(&self, mechanism: &Mechanism, input: &[u8]) -> Result<Vec<u8>, HsmError> {
        let (epoch, handle) = *self.handle.lock().unwrap_or_else(|p| p.into_inner());
        match self
            .hsm
            .with_handle(epoch, |s| s.sign(mechanism, handle, input))
        {
            Ok(sig) => Ok(sig),
            Err(SessionError::StaleHandle) => self.sign_refound(mechanism, input),
            Err(SessionError::Ck(e)) if handle_stale(&e) => self.sign_refound(mechanism, input),
            Err(e) => Err(HsmError::from_ck_or(e)),
        }
    }

    /// Finds the private key again by label (the epoch is read first, so a handle is
    /// never cached under a newer epoch than the one it was found in) and signs once.
    fn sign_refound(&self, mechanism: &Mechanism, input: &[u8]) -> Result<Vec<u8>, HsmError> {
        let epoch = self.hsm.handles_epoch();
        let fresh = require_key(&self.hsm, &self.label, ObjectClass::PRIVATE_KEY)
            .inspect_err(|e| self.hsm.report_fault(e))?;
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = (epoch, fresh);
        self.hsm
            .with_handle(epoch, |s| s.sign(mechanism, fresh, input))
            .map_err(HsmError::from_ck_or)
    }
}

/// Converts PKCS#11's fixed-width r||s into the DER SEQUENCE { r INTEGER, s INTEGER }.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    let sig = p256::ecdsa::Signature::from_slice(raw)
        .map_err(|_| HsmError::Malformed("ECDSA signature is not a valid r||s".into()))?;
    Ok(sig.to_der().as_bytes().to_vec())
}

impl rcgen::PublicKeyData for HsmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public.raw
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.public.algorithm {
            Algorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Algorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

impl rcgen::SigningKey for HsmKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_x509(msg).map_err(|e| {
            tracing::error!(key = %self.label, kind = e.kind(), error = %e, "HSM signing failed");
            rcgen::Error::RemoteKeyError
        })
    }
}

impl credmint_ledger::Signer for HsmKey {
    fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        if self.public.raw.len() == 32 {
            out.copy_from_slice(&self.public.raw);
        }
        out
    }
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64], credmint_ledger::SignerError> {
        if self.public.algorithm != Algorithm::Ed25519 {
            return Err(credmint_ledger::SignerError(format!(
                "key {:?} is not Ed25519",
                self.label
            )));
        }
        let sig = self
            .sign_raw(msg)
            .map_err(|e| credmint_ledger::SignerError(e.to_string()))?;
        sig.try_into()
            .map_err(|_| credmint_ledger::SignerError("signature length".into()))
    }
}
