//! Intermediate CA mode: the CA key rotates with the appliance stopped, because its next
//! certificate comes from the enterprise root. `credmint ca rotate --csr` generates the
//! next CA key (`<label>-rN`) in the token and writes its CSR; `credmint ca import` of the
//! certificate signed for it appends `KeyRotated` (signed by the old and the new key; no
//! cross-certificate, both generations chain to the same enterprise root) followed by
//! `CaImported` with the new issuer chain. The next `serve` signs with the new key and
//! keeps answering status for the old generation through its overlap, as after an online
//! CA rotation.

use std::path::Path;
use std::sync::Arc;

use credmint_ledger::event::{CaImported, Event, KeyRole, KeyRotated};
use credmint_ledger::{Ledger, NewEntry, StoreError};
use cryptoki::object::ObjectClass;

use super::rotate::{info, sign_rotation};
use crate::ca::import::{ca_csr_pem, check_import, ImportError};
use crate::config::Config;
use crate::hsm::keys::{find_key, generate_key_pair};
use crate::hsm::{Hsm, HsmKey};
use crate::init::InitError;
use crate::issuance::pem_encode;

/// Actor of the records `ca import` writes.
pub const CA_IMPORT_ACTOR: &str = "system:ca-import";

/// The latest `CaImported` record: after the last CA rotation, or the genesis import.
pub fn latest_import(ledger: &Ledger) -> Result<Option<CaImported>, StoreError> {
    let rotated = super::history(ledger)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into_iter()
        .rev()
        .find(|h| h.rotation.role == KeyRole::Ca)
        .map(|h| h.index + 1);
    // The genesis import follows the genesis and the init operators: a short scan.
    let candidates: Vec<u64> = match rotated {
        Some(i) => vec![i],
        None => (1..ledger.size().min(64)).collect(),
    };
    for index in candidates {
        if let Some(rec) = ledger.record(index)? {
            if let Event::CaImported(c) = rec.event {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

/// PEM of the issuers above the CA in force (nearest first, root last); empty for the
/// single-tier online root.
pub fn issuers_pem(ledger: &Ledger) -> Result<String, StoreError> {
    Ok(latest_import(ledger)?
        .map(|c| {
            c.issuer_chain_der
                .iter()
                .map(|d| pem_encode("CERTIFICATE", d))
                .collect()
        })
        .unwrap_or_default())
}

/// The label of the next CA key: `<label>-rN` after N-1 CA rotations.
fn next_label(cfg: &Config, ledger: &Ledger) -> Result<String, InitError> {
    let done = super::history(ledger)
        .map_err(|e| InitError::Operator(e.to_string()))?
        .iter()
        .filter(|h| h.rotation.role == KeyRole::Ca)
        .count();
    Ok(format!("{}-r{}", cfg.keys.ca.label, done + 1))
}

/// `ca rotate --csr`: the next CA key (generated once; a repeated call reuses it) and its
/// CSR, written to `out` and kept as the pending request.
pub fn request(cfg: &Config, hsm: &Arc<Hsm>, out: &Path) -> Result<String, InitError> {
    let ledger = Ledger::open(&cfg.ledger.file)?;
    if latest_import(&ledger)?.is_none() {
        return Err(ImportError::NotIntermediate.into());
    }
    let label = next_label(cfg, &ledger)?;
    let alg = cfg.keys.ca.algorithm;
    if find_key(hsm, &label, ObjectClass::PRIVATE_KEY)?.is_none() {
        generate_key_pair(hsm, &label, alg)?;
        crate::init::refresh_token_copy(cfg);
    }
    let key = HsmKey::load(hsm.clone(), &label, alg)?;
    let csr = ca_csr_pem(&key, &cfg.identity.ca_common_name)?;
    for path in [out, &cfg.ca_request_path()] {
        std::fs::write(path, &csr).map_err(|source| InitError::Io {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(label)
}

/// `ca import` of the certificate for the pending next CA key: checks it, then commits
/// `KeyRotated` + `CaImported` and a checkpoint.
pub fn import(
    cfg: &Config,
    hsm: &Arc<Hsm>,
    cert: Vec<u8>,
    chain: Vec<Vec<u8>>,
    now: time::OffsetDateTime,
) -> Result<(), InitError> {
    let ledger = Ledger::open(&cfg.ledger.file)?;
    let label = next_label(cfg, &ledger)?;
    let alg = cfg.keys.ca.algorithm;
    if find_key(hsm, &label, ObjectClass::PRIVATE_KEY)?.is_none() {
        return Err(ImportError::AlreadyImported.into());
    }
    let new_key = HsmKey::load(hsm.clone(), &label, alg)?;
    check_import(&cert, &chain, &new_key, now.unix_timestamp())?;
    let in_force = ledger.keys_in_force();
    // The token object of the key the ledger has in force for `role`.
    let key_in_force = |role: KeyRole| {
        let info = in_force
            .iter()
            .find(|k| k.role == role)
            .ok_or_else(|| InitError::Operator(format!("no {role:?} key in force")))?;
        super::load_key(hsm, info)
            .map(|key| (info.clone(), key))
            .map_err(|e| InitError::Operator(e.to_string()))
    };
    let (old_info, old_key) = key_in_force(KeyRole::Ca)?;
    let (_, ledger_key) = key_in_force(KeyRole::Ledger)?;
    let mut event = KeyRotated {
        role: KeyRole::Ca,
        old_key: old_info,
        new_key: info(KeyRole::Ca, &new_key),
        ca_certificate_der: cert.clone(),
        cross_certificate_der: Vec::new(),
        old_signature: Vec::new(),
        new_signature: Vec::new(),
    };
    let msg = event.signed_message(ledger.origin());
    event.old_signature = sign_rotation(&old_key, &msg)?;
    event.new_signature = sign_rotation(&new_key, &msg)?;
    let timestamp_ms = crate::init::unix_ms(now).max(ledger.head_timestamp_ms());
    let entry = |event| NewEntry {
        timestamp_ms,
        actor: CA_IMPORT_ACTOR.into(),
        event,
    };
    ledger
        .append_batch_with(
            vec![
                entry(Event::KeyRotated(event)),
                entry(Event::CaImported(CaImported {
                    key: info(KeyRole::Ca, &new_key),
                    ca_certificate_der: cert,
                    issuer_chain_der: chain,
                })),
            ],
            crate::registry::apply,
        )
        .map_err(|e| InitError::Operator(e.to_string()))?;
    ledger.sign_checkpoint(&ledger_key)?;
    Ok(())
}
