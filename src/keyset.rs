//! The three token keys credmint signs with, loaded once and shared.

use std::sync::Arc;

use credmint_ledger::event::{KeyAlgorithm, KeyInfo, KeyRole};

use crate::config::{Algorithm, Config};
use crate::hsm::{Hsm, HsmError, HsmKey};

/// CA, token (JWT) and ledger (checkpoint) keys.
#[derive(Clone, Debug)]
pub struct KeySet {
    pub ca: HsmKey,
    pub token: HsmKey,
    pub ledger: HsmKey,
}

impl KeySet {
    pub fn load(hsm: Arc<Hsm>, cfg: &Config) -> Result<KeySet, HsmError> {
        let k = &cfg.keys;
        Ok(KeySet {
            ca: HsmKey::load(hsm.clone(), &k.ca.label, k.ca.algorithm)?,
            token: HsmKey::load(hsm.clone(), &k.token.label, k.token.algorithm)?,
            ledger: HsmKey::load(hsm, &k.ledger.label, k.ledger.algorithm)?,
        })
    }

    /// Public key descriptions as recorded in the genesis event.
    pub fn key_infos(&self) -> Vec<KeyInfo> {
        [
            (KeyRole::Ca, &self.ca),
            (KeyRole::Token, &self.token),
            (KeyRole::Ledger, &self.ledger),
        ]
        .into_iter()
        .map(|(role, key)| KeyInfo {
            role,
            algorithm: ledger_algorithm(key.algorithm()),
            label: key.label().to_string(),
            spki_der: key.public_key().spki_der(),
        })
        .collect()
    }
}

pub fn ledger_algorithm(alg: Algorithm) -> KeyAlgorithm {
    match alg {
        Algorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        Algorithm::Ed25519 => KeyAlgorithm::Ed25519,
    }
}
