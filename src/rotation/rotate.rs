//! One rotation, inside the running appliance (it holds the ledger file lock):
//! new key pair generated in the token -> `KeyRotated` signed by old and new key ->
//! durable append -> the live key set switches -> files, TLS roots, status caches and (for
//! the ledger key) a fresh checkpoint follow.

use std::sync::Arc;

use credmint_ledger::event::{KeyInfo, KeyRole, KeyRotated};
use cryptoki::object::ObjectClass;

use super::{
    assemble, build_cross, build_successor_root, ca_overlap_secs, crl_url, not_after, role_index,
    token_generation, write_ca_files, Active, CaGeneration, RotationError,
};
use crate::app::AppState;
use crate::ca::RootCa;
use crate::clock::rfc3339;
use crate::config::Algorithm;
use crate::hsm::keys::{find_key, generate_key_pair};
use crate::hsm::{HsmError, HsmKey};
use crate::issuance::pem_encode;
use crate::keyset::ledger_algorithm;
use crate::sequencer::{Actor, Command, KeySwap, Op};
use crate::status::ocsp::OcspIssuer;

/// `ca`, `token` or `ledger`.
pub fn parse_role(s: &str) -> Option<KeyRole> {
    match s {
        "ca" => Some(KeyRole::Ca),
        "token" => Some(KeyRole::Token),
        "ledger" => Some(KeyRole::Ledger),
        _ => None,
    }
}

pub fn role_name(role: KeyRole) -> &'static str {
    match role {
        KeyRole::Ca => "ca",
        KeyRole::Token => "token",
        KeyRole::Ledger => "ledger",
    }
}

/// What a rotation produced, before it is committed.
struct Prepared {
    event: KeyRotated,
    new_key: HsmKey,
    new_root: Option<RootCa>,
}

/// The result handed back to the operator.
pub type RotationOutcome = crate::wire::Rotated;

pub(super) fn info(role: KeyRole, key: &HsmKey) -> KeyInfo {
    KeyInfo {
        role,
        algorithm: ledger_algorithm(key.algorithm()),
        label: key.label().to_string(),
        spki_der: key.public_key().spki_der(),
    }
}

/// The rotation message signature of `key`: raw Ed25519, or DER ECDSA over SHA-256.
pub(super) fn sign_rotation(key: &HsmKey, msg: &[u8]) -> Result<Vec<u8>, HsmError> {
    match key.algorithm() {
        Algorithm::Ed25519 => key.sign_raw(msg),
        Algorithm::EcdsaP256 => key.sign_x509(msg),
    }
}

fn unavailable(e: impl std::fmt::Display) -> RotationError {
    RotationError::Unavailable(e.to_string())
}

/// Generates the new key and builds the signed event (blocking: PKCS#11).
fn prepare(state: &AppState, active: &Active, role: KeyRole) -> Result<Prepared, RotationError> {
    let cfg = &state.config;
    let (base, old) = match role {
        KeyRole::Ca => (&cfg.keys.ca.label, &active.keys.ca),
        KeyRole::Token => (&cfg.keys.token.label, &active.keys.token),
        KeyRole::Ledger => (&cfg.keys.ledger.label, &active.keys.ledger),
    };
    let hsm = state.hsm.clone();
    // `<label>-rN`; skip a suffix whose objects a failed earlier attempt left behind.
    let mut n = active.rotations[role_index(role)] + 1;
    let label = loop {
        let label = format!("{base}-r{n}");
        let taken = find_key(&hsm, &label, ObjectClass::PRIVATE_KEY)
            .map_err(unavailable)?
            .is_some()
            || find_key(&hsm, &label, ObjectClass::PUBLIC_KEY)
                .map_err(unavailable)?
                .is_some();
        if !taken {
            break label;
        }
        n += 1;
    };
    if label.len() > 32 {
        return Err(unavailable(format!("key label {label:?} exceeds 32 bytes")));
    }
    generate_key_pair(&hsm, &label, old.algorithm()).map_err(unavailable)?;
    let new_key = HsmKey::load(hsm, &label, old.algorithm()).map_err(unavailable)?;
    // The new key's object files exist now: make them durable and part of the copy.
    crate::init::refresh_token_copy(cfg);
    let old_info = state
        .ledger
        .keys_in_force()
        .into_iter()
        .find(|k| k.role == role)
        .ok_or_else(|| RotationError::Internal(format!("no {role:?} key in force")))?;
    if old_info.spki_der != old.public_key().spki_der() {
        return Err(RotationError::NotInForce(
            "the signing key is not the key in force; restart the appliance".into(),
        ));
    }
    let mut event = KeyRotated {
        role,
        old_key: old_info,
        new_key: info(role, &new_key),
        ca_certificate_der: Vec::new(),
        cross_certificate_der: Vec::new(),
        old_signature: Vec::new(),
        new_signature: Vec::new(),
    };
    let mut new_root = None;
    if role == KeyRole::Ca {
        let now = state.clock.now();
        let root =
            build_successor_root(&active.ca.der, &new_key, cfg.identity.ca_validity_days, now)
                .map_err(unavailable)?;
        event.cross_certificate_der =
            build_cross(&active.ca.der, old, &new_key, now).map_err(unavailable)?;
        event.ca_certificate_der = root.der.clone();
        new_root = Some(root);
    }
    let msg = event.signed_message(state.ledger.origin());
    event.old_signature = sign_rotation(old, &msg).map_err(unavailable)?;
    event.new_signature = sign_rotation(&new_key, &msg).map_err(unavailable)?;
    Ok(Prepared {
        event,
        new_key,
        new_root,
    })
}

/// The snapshot after the rotation committed at `at` (unix seconds).
fn next(
    state: &AppState,
    active: &Active,
    p: &Prepared,
    at: u64,
) -> Result<(Active, Option<u64>), RotationError> {
    let cfg = &state.config;
    let mut keys = active.keys.clone();
    let mut cas = active.cas.clone();
    let mut tokens = active.tokens.clone();
    let mut rotations = active.rotations;
    rotations[role_index(p.event.role)] += 1;
    let mut retires = None;
    match p.event.role {
        KeyRole::Ca => {
            keys.ca = p.new_key.clone();
            if let Some(prev) = cas.last_mut() {
                let t = (at + ca_overlap_secs(cfg)).min(not_after(&prev.root.der)?);
                prev.retire_at = Some(t);
                retires = Some(t);
            }
            let root = p.new_root.clone().unwrap_or_else(|| RootCa {
                der: p.event.ca_certificate_der.clone(),
                pem: pem_encode("CERTIFICATE", &p.event.ca_certificate_der),
            });
            let generation = active.ca_generation + 1;
            cas.push(CaGeneration {
                generation,
                issuer: Arc::new(
                    OcspIssuer::from_ca_der(&root.der)
                        .map_err(|e| RotationError::Ca(e.to_string()))?,
                ),
                root: RootCa {
                    pem: pem_encode("CERTIFICATE", &root.der),
                    der: root.der,
                },
                cross_der: p.event.cross_certificate_der.clone(),
                key: p.new_key.clone(),
                crl_url: crl_url(&state.status_url, generation),
                retire_at: None,
            });
        }
        KeyRole::Token => {
            keys.token = p.new_key.clone();
            if let Some(prev) = tokens.last_mut() {
                let t = at + super::token_overlap_secs(cfg);
                prev.retire_at = Some(t);
                retires = Some(t);
            }
            tokens.push(token_generation(&p.event.new_key, None)?);
        }
        KeyRole::Ledger => keys.ledger = p.new_key.clone(),
    }
    Ok((assemble(keys, cas, tokens, rotations)?, retires))
}

/// Rotates the `role` key on behalf of `actor`. The sequencer swaps the live keys (and,
/// for the CA, files, listener roots and status caches) on its own thread right after
/// the commit, before this returns: a caller that goes away cannot leave the old key in
/// use after a committed rotation.
pub async fn rotate(
    state: &AppState,
    role: KeyRole,
    actor: Actor,
    reason: &str,
) -> Result<RotationOutcome, RotationError> {
    // One rotation at a time, until its keys are swapped: the guard moves into the swap,
    // so a caller that goes away cannot let a second rotation start from a stale set.
    if role == KeyRole::Ca
        && super::offline::latest_import(&state.ledger)
            .map_err(|e| RotationError::History(e.to_string()))?
            .is_some()
    {
        return Err(RotationError::IntermediateCa);
    }
    let one_at_a_time = state.keys.rotating.clone().lock_owned().await;
    let active = state.keys.current();
    let (st, act) = (state.clone(), active.clone());
    let prepared = tokio::task::spawn_blocking(move || prepare(&st, &act, role))
        .await
        .map_err(|e| RotationError::Internal(e.to_string()))??;
    let event = prepared.event.clone();
    let st = state.clone();
    let failed = Arc::new(std::sync::Mutex::new(None::<String>));
    let failure = failed.clone();
    let swap = KeySwap(Box::new(move |at| {
        let _held = one_at_a_time;
        let result = (|| -> Result<(), String> {
            // Build on the keys in force now, not on the snapshot the rotation started from.
            let current = st.keys.current();
            let (next, _) = next(&st, &current, &prepared, at).map_err(|e| e.to_string())?;
            let next = Arc::new(next);
            st.keys.replace(next.clone());
            if role == KeyRole::Ca {
                after_ca_rotation(&st, &next, at)?;
            }
            Ok(())
        })();
        if let Err(e) = &result {
            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
        }
        result
    }));
    let actor_name = actor.ledger_name();
    let receipt = state
        .sequencer
        .submit(Command::new(
            actor,
            Op::RotateKey {
                event: event.clone(),
                swap,
            },
        ))
        .await?;
    let record = receipt
        .records
        .first()
        .ok_or_else(|| RotationError::Internal("rotation committed no record".into()))?;
    if let Some(e) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(RotationError::Internal(format!(
            "rotation committed at ledger index {} but could not be applied in memory ({e}); restart the appliance",
            record.index
        )));
    }
    let next = state.keys.current();
    let retires = match role {
        KeyRole::Ca => next.cas.iter().rev().nth(1).and_then(|g| g.retire_at),
        KeyRole::Token => next.tokens.iter().rev().nth(1).and_then(|g| g.retire_at),
        KeyRole::Ledger => None,
    };
    tracing::warn!(
        role = role_name(role),
        actor = %actor_name,
        reason,
        ledger_index = record.index,
        old = %event.old_key.label,
        new = %event.new_key.label,
        "key rotated"
    );
    let key_ref = |k: &KeyInfo| crate::wire::KeyRef {
        label: k.label.clone(),
        fingerprint: hex::encode(k.fingerprint()),
    };
    let mut body = crate::wire::Rotated {
        role: role_name(role).to_string(),
        ledger_index: record.index,
        reason: reason.to_string(),
        old_key: key_ref(&event.old_key),
        new_key: key_ref(&event.new_key),
        old_key_retires_at: retires.map(rfc3339),
        ca_generation: None,
        ca_certificate: None,
        cross_certificate: None,
        crl_url: None,
        kid: None,
        checkpoint_size: None,
        ledger_key: None,
    };
    match role {
        KeyRole::Ca => {
            body.ca_generation = Some(u64::from(next.ca_generation));
            body.ca_certificate = Some(pem_encode("CERTIFICATE", &event.ca_certificate_der));
            body.cross_certificate = Some(pem_encode("CERTIFICATE", &event.cross_certificate_der));
            body.crl_url = Some(next.crl_url().to_string());
        }
        KeyRole::Token => body.kid = Some(next.token_kid.to_string()),
        KeyRole::Ledger => {
            let size = crate::checkpointer::sign_if_grown(state)
                .await
                .map_err(|e| RotationError::Internal(format!("checkpoint after rotation: {e}")))?;
            body.checkpoint_size = Some(size.unwrap_or(state.ledger.size()));
            body.ledger_key = Some(credmint_ledger::note::verifier_key_string(
                state.ledger.origin(),
                &state.ledger.ledger_key(),
            ));
        }
    }
    Ok(body)
}

/// Files, listener roots and status caches after a CA rotation (blocking).
fn after_ca_rotation(state: &AppState, active: &Active, now: u64) -> Result<(), String> {
    let cfg = &state.config;
    write_ca_files(cfg, active, now).map_err(|e| e.to_string())?;
    let chain = std::fs::read_to_string(cfg.server_cert_path()).map_err(|e| e.to_string())?;
    let key = std::fs::read_to_string(cfg.server_key_path()).map_err(|e| e.to_string())?;
    super::listener::reload(state, active, &chain, &key)?;
    state.status.ca_changed();
    Ok(())
}
