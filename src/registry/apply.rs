//! The one function that turns ledger records into projection rows.

use credmint_ledger::event::{account_id, AcmeAccountChange, ChangeKind, Event, IntegrationSpec};
use credmint_ledger::{Ledger, Record};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::live::{self, LiveCredential};
use super::read::CredentialKind;
use super::schema::{
    CertValue, ACME_ACCOUNTS, ACME_EAB, ACME_KEYS, ACTIVITY, CERTIFICATES, CLOSED_CHANGES,
    ENROLLMENTS, INTEGRATIONS, INTEGRATION_CERTS, INTEGRATION_META, INTEGRATION_TOKENS, LIVE, META,
    MONITORS, MONITOR_NAMES, OPERATORS, OPERATOR_LINEAGE, OPERATOR_REQUESTS, PENDING_CHANGES,
    PROJECTION_VERSION, REVOKED, TOKENS,
};

/// `CLOSED_CHANGES` states.
pub const CHANGE_APPROVED: u8 = 1;
pub const CHANGE_SUPERSEDED: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("projection storage: {0}")]
    Storage(String),
    #[error("projection inconsistent at record {index}: {reason}")]
    Inconsistent { index: u64, reason: String },
}

fn storage(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Storage(e.to_string())
}

/// Applies `records` (just appended, in order) to the projection tables inside `txn`.
pub fn apply(txn: &WriteTransaction, records: &[Record]) -> Result<(), ProjectionError> {
    let mut integrations = txn.open_table(INTEGRATIONS).map_err(storage)?;
    let mut enrollments = txn.open_table(ENROLLMENTS).map_err(storage)?;
    let mut certs = txn.open_table(CERTIFICATES).map_err(storage)?;
    let mut tokens = txn.open_table(TOKENS).map_err(storage)?;
    let mut activity = txn.open_table(ACTIVITY).map_err(storage)?;
    let mut meta = txn.open_table(META).map_err(storage)?;
    let mut operators = txn.open_table(OPERATORS).map_err(storage)?;
    let mut revoked = txn.open_table(REVOKED).map_err(storage)?;
    let mut integration_certs = txn
        .open_multimap_table(INTEGRATION_CERTS)
        .map_err(storage)?;
    let mut integration_tokens = txn
        .open_multimap_table(INTEGRATION_TOKENS)
        .map_err(storage)?;
    let mut integration_meta = txn.open_table(INTEGRATION_META).map_err(storage)?;
    let mut pending = txn.open_table(PENDING_CHANGES).map_err(storage)?;
    let mut closed = txn.open_table(CLOSED_CHANGES).map_err(storage)?;
    let mut live_rows = txn.open_table(LIVE).map_err(storage)?;
    let mut operator_requests = txn.open_table(OPERATOR_REQUESTS).map_err(storage)?;
    let mut lineage = txn.open_table(OPERATOR_LINEAGE).map_err(storage)?;
    let mut monitors = txn.open_table(MONITORS).map_err(storage)?;
    let mut monitor_names = txn.open_table(MONITOR_NAMES).map_err(storage)?;
    let mut acme_eab = txn.open_table(ACME_EAB).map_err(storage)?;
    let mut acme_accounts = txn.open_table(ACME_ACCOUNTS).map_err(storage)?;
    let mut acme_keys = txn.open_table(ACME_KEYS).map_err(storage)?;
    for r in records {
        let at = r.timestamp_ms / 1000;
        let inconsistent = |reason: &str| ProjectionError::Inconsistent {
            index: r.index,
            reason: reason.into(),
        };
        match &r.event {
            Event::IntegrationRegistered(e) => {
                put_spec(&mut integrations, &e.spec)?;
                integration_meta
                    .insert(e.spec.name.as_str(), (at, at))
                    .map_err(storage)?;
            }
            Event::IntegrationChanged(e) => {
                if e.kind == ChangeKind::IncreaseApproved
                    && pending.remove(e.request_index).map_err(storage)?.is_some()
                {
                    closed
                        .insert(e.request_index, (CHANGE_APPROVED, r.index))
                        .map_err(storage)?;
                }
                // Every other request for this integration was based on the old state.
                let mut stale = Vec::new();
                for entry in pending.iter().map_err(storage)? {
                    let (k, v) = entry.map_err(storage)?;
                    if v.value().0 == e.spec.name {
                        stale.push(k.value());
                    }
                }
                for k in stale {
                    pending.remove(k).map_err(storage)?;
                    closed
                        .insert(k, (CHANGE_SUPERSEDED, r.index))
                        .map_err(storage)?;
                }
                put_spec(&mut integrations, &e.spec)?;
                let registered = integration_meta
                    .get(e.spec.name.as_str())
                    .map_err(storage)?
                    .map(|g| g.value().0)
                    .unwrap_or(at);
                integration_meta
                    .insert(e.spec.name.as_str(), (registered, at))
                    .map_err(storage)?;
            }
            Event::ChangeRequested(e) => {
                let base: [u8; 32] = integrations
                    .get(e.proposed.name.as_str())
                    .map_err(storage)?
                    .map(|g| Sha256::digest(g.value()).into())
                    .ok_or_else(|| inconsistent("change requested for unknown integration"))?;
                let proposed = e.proposed.to_bytes();
                pending
                    .insert(
                        r.index,
                        (
                            e.proposed.name.as_str(),
                            r.actor.as_str(),
                            e.reason.as_str(),
                            base.as_slice(),
                            proposed.as_slice(),
                            at,
                        ),
                    )
                    .map_err(storage)?;
            }
            Event::MonitorTokenCreated(e) => {
                monitors
                    .insert(&e.token_hash, (e.name.as_str(), e.expires_at, 0))
                    .map_err(storage)?;
                monitor_names
                    .insert(e.name.as_str(), &e.token_hash)
                    .map_err(storage)?;
            }
            Event::MonitorTokenRevoked(e) => {
                let expires_at = monitors
                    .get(&e.token_hash)
                    .map_err(storage)?
                    .map(|g| g.value().1)
                    .ok_or_else(|| inconsistent("monitoring token unknown"))?;
                monitors
                    .insert(&e.token_hash, (e.name.as_str(), expires_at, 1))
                    .map_err(storage)?;
                monitor_names.remove(e.name.as_str()).map_err(storage)?;
            }
            Event::EnrollmentCreated(e) => {
                enrollments
                    .insert(&e.token_hash, (e.integration.as_str(), e.expires_at, 0))
                    .map_err(storage)?;
            }
            Event::EnrollmentUsed(e) => {
                let row = enrollments
                    .get(&e.token_hash)
                    .map_err(storage)?
                    .map(|g| {
                        let (i, exp, _) = g.value();
                        (i.to_string(), exp)
                    })
                    .ok_or_else(|| inconsistent("enrollment token unknown"))?;
                enrollments
                    .insert(&e.token_hash, (row.0.as_str(), row.1, at.max(1)))
                    .map_err(storage)?;
            }
            Event::CertificateIssued(e) => {
                new_cert(
                    &mut certs,
                    &e.serial,
                    e.integration.as_str(),
                    CredentialKind::Workload,
                    e.not_after,
                    r.index,
                )?;
                integration_certs
                    .insert(e.integration.as_str(), e.serial.as_slice())
                    .map_err(storage)?;
                let k = live::key(
                    &e.integration,
                    e.not_after,
                    &LiveCredential::Certificate(e.serial.clone()),
                );
                live_rows.insert(k.as_slice(), ()).map_err(storage)?;
                bump_activity(&mut activity, &e.integration, at)?;
            }
            Event::OperatorCertIssued(e) => {
                new_cert(
                    &mut certs,
                    &e.serial,
                    e.name.as_str(),
                    CredentialKind::Operator,
                    e.not_after,
                    r.index,
                )?;
                if operators.get(e.name.as_str()).map_err(storage)?.is_none() {
                    operators
                        .insert(e.name.as_str(), r.index)
                        .map_err(storage)?;
                    // A name issued directly by another operator (ledgers before dual
                    // control): that operator both asked for it and let it in.
                    if let Some(issuer) = r.actor.strip_prefix("operator:") {
                        lineage
                            .insert(e.name.as_str(), (issuer, issuer))
                            .map_err(storage)?;
                    }
                }
            }
            Event::OperatorRequested(e) => {
                let requester = r.actor.strip_prefix("operator:").unwrap_or(&r.actor);
                let row = (
                    e.name.as_str(),
                    requester,
                    e.spki_der.as_slice(),
                    e.approval_ref.as_str(),
                    at,
                );
                operator_requests.insert(r.index, row).map_err(storage)?;
            }
            Event::OperatorApproved(e) => {
                let requester = operator_requests
                    .remove(e.request_index)
                    .map_err(storage)?
                    .map(|g| g.value().1.to_string())
                    .ok_or_else(|| inconsistent("approval of an unknown operator request"))?;
                let approver = r.actor.strip_prefix("operator:").unwrap_or(&r.actor);
                new_cert(
                    &mut certs,
                    &e.serial,
                    e.name.as_str(),
                    CredentialKind::Operator,
                    e.not_after,
                    r.index,
                )?;
                operators
                    .insert(e.name.as_str(), r.index)
                    .map_err(storage)?;
                lineage
                    .insert(e.name.as_str(), (requester.as_str(), approver))
                    .map_err(storage)?;
            }
            Event::TokenIssued(e) => {
                let row = (e.integration.as_str(), e.expires_at, r.index, 0, 0);
                tokens.insert(e.jti.as_str(), row).map_err(storage)?;
                integration_tokens
                    .insert(e.integration.as_str(), e.jti.as_str())
                    .map_err(storage)?;
                let k = live::key(
                    &e.integration,
                    e.expires_at,
                    &LiveCredential::Token(e.jti.clone()),
                );
                live_rows.insert(k.as_slice(), ()).map_err(storage)?;
                bump_activity(&mut activity, &e.integration, at)?;
            }
            Event::Revoked(e) => {
                let old = certs
                    .get(e.serial.as_slice())
                    .map_err(storage)?
                    .map(|g| {
                        let (o, k, na, i, _, _) = g.value();
                        (o.to_string(), k, na, i)
                    })
                    .ok_or_else(|| inconsistent("revoked serial unknown"))?;
                let row = (old.0.as_str(), old.1, old.2, old.3, r.index, e.reason);
                certs.insert(e.serial.as_slice(), row).map_err(storage)?;
                revoked
                    .insert(e.serial.as_slice(), (at, e.reason, old.2))
                    .map_err(storage)?;
                // A certificate revoked as superseded stays in the live index: it may
                // still renew, so revoke-all and decommissioning must reach it.
                if old.1 == CredentialKind::Workload as u8 && e.reason != crate::revoke::SUPERSEDED
                {
                    let cred = LiveCredential::Certificate(e.serial.clone());
                    let k = live::key(&old.0, old.2, &cred);
                    live_rows.remove(k.as_slice()).map_err(storage)?;
                }
            }
            Event::AcmeEabCreated(e) => {
                acme_eab
                    .insert(e.kid.as_str(), (e.integration.as_str(), e.expires_at, 0))
                    .map_err(storage)?;
            }
            Event::AcmeAccountCreated(e) => {
                let (integration, expires_at) = acme_eab
                    .get(e.eab_kid.as_str())
                    .map_err(storage)?
                    .map(|g| {
                        let (i, exp, _) = g.value();
                        (i.to_string(), exp)
                    })
                    .ok_or_else(|| inconsistent("EAB key id unknown"))?;
                acme_eab
                    .insert(
                        e.eab_kid.as_str(),
                        (integration.as_str(), expires_at, r.index),
                    )
                    .map_err(storage)?;
                let row = (
                    e.integration.as_str(),
                    e.jwk.as_slice(),
                    0u8,
                    e.eab_kid.as_str(),
                    r.index,
                );
                acme_accounts
                    .insert(e.account.as_str(), row)
                    .map_err(storage)?;
                acme_keys
                    .insert(account_id(&e.jwk).as_str(), e.account.as_str())
                    .map_err(storage)?;
            }
            Event::AcmeAccountChanged(e) => {
                let old = acme_accounts
                    .get(e.account.as_str())
                    .map_err(storage)?
                    .map(|g| {
                        let (i, jwk, dead, kid, at) = g.value();
                        (i.to_string(), jwk.to_vec(), dead, kid.to_string(), at)
                    })
                    .ok_or_else(|| inconsistent("ACME account unknown"))?;
                let (jwk, dead) = match &e.change {
                    AcmeAccountChange::KeyChanged { jwk } => {
                        acme_keys
                            .insert(account_id(jwk).as_str(), e.account.as_str())
                            .map_err(storage)?;
                        (jwk.clone(), old.2)
                    }
                    AcmeAccountChange::Deactivated => (old.1.clone(), 1),
                };
                let row = (old.0.as_str(), jwk.as_slice(), dead, old.3.as_str(), old.4);
                acme_accounts
                    .insert(e.account.as_str(), row)
                    .map_err(storage)?;
            }
            Event::TokenRevoked(e) => {
                let old = tokens
                    .get(e.jti.as_str())
                    .map_err(storage)?
                    .map(|g| {
                        let (o, exp, i, _, _) = g.value();
                        (o.to_string(), exp, i)
                    })
                    .ok_or_else(|| inconsistent("revoked jti unknown"))?;
                let row = (old.0.as_str(), old.1, old.2, r.index, e.reason);
                tokens.insert(e.jti.as_str(), row).map_err(storage)?;
                let k = live::key(&old.0, old.1, &LiveCredential::Token(e.jti.clone()));
                live_rows.remove(k.as_slice()).map_err(storage)?;
            }
            _ => {}
        }
    }
    if let Some(last) = records.last() {
        meta.insert("size", last.index + 1).map_err(storage)?;
        meta.insert("version", PROJECTION_VERSION)
            .map_err(storage)?;
    }
    Ok(())
}

/// A certificate row for a freshly issued (unrevoked) certificate.
fn new_cert(
    certs: &mut redb::Table<&[u8], CertValue>,
    serial: &[u8],
    owner: &str,
    kind: CredentialKind,
    not_after: u64,
    issued_index: u64,
) -> Result<(), ProjectionError> {
    certs
        .insert(serial, (owner, kind as u8, not_after, issued_index, 0, 0))
        .map_err(storage)?;
    Ok(())
}

fn put_spec(
    table: &mut redb::Table<&str, &[u8]>,
    spec: &IntegrationSpec,
) -> Result<(), ProjectionError> {
    table
        .insert(spec.name.as_str(), spec.to_bytes().as_slice())
        .map_err(storage)?;
    Ok(())
}

fn bump_activity(
    table: &mut redb::Table<&str, (u64, u64, u64)>,
    integration: &str,
    at: u64,
) -> Result<(), ProjectionError> {
    let (last, count, _) = table
        .get(integration)
        .map_err(storage)?
        .map(|g| g.value())
        .unwrap_or((0, 0, 0));
    table
        .insert(integration, (at, count + 1, last))
        .map_err(storage)?;
    Ok(())
}

/// Rebuilds every projection table from the ledger when they are missing, of another
/// layout version, or do not reflect the ledger's size (e.g. a ledger written before the
/// projection existed). Returns true when it rebuilt.
pub fn rebuild_if_stale(ledger: &Ledger) -> Result<bool, ProjectionError> {
    let db = ledger.database().map_err(storage)?;
    let (version, size) = {
        let read = db.begin_read().map_err(storage)?;
        match read.open_table(META) {
            Ok(meta) => (
                meta.get("version").map_err(storage)?.map(|g| g.value()),
                meta.get("size").map_err(storage)?.map(|g| g.value()),
            ),
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None),
            Err(e) => return Err(storage(e)),
        }
    };
    if version == Some(PROJECTION_VERSION) && size == Some(ledger.size()) {
        return Ok(false);
    }
    let txn = db.begin_write().map_err(storage)?;
    let _ = txn.delete_table(INTEGRATIONS);
    let _ = txn.delete_table(ENROLLMENTS);
    let _ = txn.delete_table(CERTIFICATES);
    let _ = txn.delete_table(TOKENS);
    let _ = txn.delete_table(ACTIVITY);
    let _ = txn.delete_table(META);
    let _ = txn.delete_table(REVOKED);
    let _ = txn.delete_multimap_table(INTEGRATION_CERTS);
    let _ = txn.delete_multimap_table(INTEGRATION_TOKENS);
    let _ = txn.delete_table(INTEGRATION_META);
    let _ = txn.delete_table(PENDING_CHANGES);
    let _ = txn.delete_table(CLOSED_CHANGES);
    let _ = txn.delete_table(OPERATORS);
    let _ = txn.delete_table(LIVE);
    let _ = txn.delete_table(OPERATOR_REQUESTS);
    let _ = txn.delete_table(OPERATOR_LINEAGE);
    let _ = txn.delete_table(MONITORS);
    let _ = txn.delete_table(MONITOR_NAMES);
    let mut batch = Vec::with_capacity(4096);
    for raw in ledger.records(0).map_err(storage)? {
        let record = raw.map_err(storage)?.decode().map_err(storage)?;
        batch.push(record);
        if batch.len() == 4096 {
            apply(&txn, &batch)?;
            batch.clear();
        }
    }
    apply(&txn, &batch)?;
    txn.commit().map_err(storage)?;
    Ok(true)
}
