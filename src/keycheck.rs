//! Start-up check of the configured keys against the ledger's key history (`serve`).
//!
//! The ledger decides which keys sign (genesis, then every `key_rotated` event); the
//! `keys.*` configuration only names them. A configuration that disagrees with that
//! history is refused rather than silently ignored:
//!
//! * `keys.<role>.label` must be the label the genesis event recorded for that role. After
//!   a rotation the key in force is `<label>-rN` and the configuration keeps the base
//!   label (README, "Key rotation"), so a rotation never makes a correct configuration
//!   disagree.
//! * `keys.<role>.algorithm` must be the algorithm of the key in force (a rotation keeps
//!   the algorithm, so this too holds across rotations).
//!
//! Then every key in force must be in the token (`KeyNotFound`, exit 14) with the public
//! key the ledger recorded (`KeyMismatch`, exit 14).

use std::sync::Arc;

use credmint_ledger::event::{Event, KeyInfo, KeyRole};
use credmint_ledger::Ledger;

use crate::config::{Config, KeyConfig};
use crate::hsm::{Hsm, HsmError, HsmKey};
use crate::rotation::algorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The configuration names a key the ledger does not (exit 3, names the key).
    #[error("{key} = {value:?} disagrees with the ledger's key history: {detail}")]
    Config {
        key: String,
        value: String,
        detail: String,
    },
    #[error(transparent)]
    Hsm(#[from] HsmError),
}

fn role_name(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Ca => "ca",
        KeyRole::Token => "token",
        KeyRole::Ledger => "ledger",
    }
}

fn configured(cfg: &Config, role: KeyRole) -> &KeyConfig {
    match role {
        KeyRole::Ca => &cfg.keys.ca,
        KeyRole::Token => &cfg.keys.token,
        KeyRole::Ledger => &cfg.keys.ledger,
    }
}

/// Checks `cfg.keys` against `ledger` and the keys in force against the token (blocking).
/// A ledger without a readable genesis is left to the ledger checks that follow.
pub fn check(cfg: &Config, hsm: &Arc<Hsm>, ledger: &Ledger) -> Result<(), KeyCheckError> {
    let genesis = match ledger.record(0).ok().flatten().map(|r| r.event) {
        Some(Event::Genesis(g)) => g,
        _ => return Ok(()),
    };
    let in_force = ledger.keys_in_force();
    for role in [KeyRole::Ca, KeyRole::Token, KeyRole::Ledger] {
        let conf = configured(cfg, role);
        let name = role_name(role);
        let Some(first) = genesis.keys.iter().find(|k| k.role == role) else {
            continue;
        };
        let current: &KeyInfo = in_force.iter().find(|k| k.role == role).unwrap_or(first);
        if conf.label != first.label {
            let rotated = if current.label != first.label {
                format!(" (in force after rotation: {:?})", current.label)
            } else {
                String::new()
            };
            return Err(KeyCheckError::Config {
                key: format!("keys.{name}.label"),
                value: conf.label.clone(),
                detail: format!(
                    "the ledger's {name} key is labelled {:?}{rotated}; set keys.{name}.label = {:?} (rotated keys are found as <label>-rN)",
                    first.label, first.label
                ),
            });
        }
        let alg = algorithm(current.algorithm);
        if conf.algorithm != alg {
            return Err(KeyCheckError::Config {
                key: format!("keys.{name}.algorithm"),
                value: conf.algorithm.name().into(),
                detail: format!(
                    "the {name} key in force ({:?}) is {}; set keys.{name}.algorithm = {:?}",
                    current.label,
                    alg.name(),
                    alg.name()
                ),
            });
        }
    }
    for key in &in_force {
        let loaded = HsmKey::load(hsm.clone(), &key.label, algorithm(key.algorithm))?;
        if loaded.public_key().spki_der() != key.spki_der {
            return Err(HsmError::KeyMismatch {
                label: key.label.clone(),
                reason: format!(
                    "its public key is not the {} key the ledger has in force",
                    role_name(key.role)
                ),
            }
            .into());
        }
    }
    Ok(())
}
