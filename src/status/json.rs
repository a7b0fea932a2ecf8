//! `GET /v1/status/{serial}` and `/v1/status/token/{jti}`: the answer, the ledger record
//! that decided it, its RFC 9162 inclusion proof and the signed checkpoint the proof leads
//! to, so a relying system can check the answer against the ledger instead of trusting it.

use std::time::Duration;

use axum::body::Bytes;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use credmint_ledger::merkle;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::clock::rfc3339;
use crate::registry::ProjectionError;
use crate::registry::Registry;
use crate::revoke::reason_name;
use crate::status::answers::Subject;
use crate::wire::{CertificateStatus, Evidence, StatusName, TokenStatus};

/// Why a status answer could not be given.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Never issued here: the body is the status document (`"status": "unknown"`).
    #[error("unknown credential")]
    Unknown(Value),
    #[error("no checkpoint signed yet")]
    NoCheckpoint,
    /// No checkpoint covers the record yet (a receipt needs one).
    #[error("no checkpoint covers record {0} yet")]
    ProofPending(u64),
    /// A revocation receipt was asked of a credential that is not revoked.
    #[error("the credential is not revoked")]
    NotRevoked,
    #[error(transparent)]
    Registry(#[from] ProjectionError),
    #[error("ledger: {0}")]
    Ledger(String),
}

fn ledger_err(e: impl std::fmt::Display) -> LookupError {
    LookupError::Ledger(e.to_string())
}

/// How long a status answer waits for a checkpoint covering a brand-new record.
pub const COVER_WAIT: Duration = Duration::from_secs(3);

/// Ledger evidence for record `index`: the record, its inclusion proof and the checkpoint.
/// The proof is checked with the ledger crate's verifier before it is handed out.
pub async fn evidence(state: &AppState, index: u64) -> Result<Evidence, LookupError> {
    // While the HSM is away no checkpoint can be signed: answer `proof_pending` at once.
    if state.hsm.unavailable().is_none() {
        state.checkpoints.covered(index + 1, COVER_WAIT).await;
    }
    let cp = state.checkpoint_view().ok_or(LookupError::NoCheckpoint)?;
    if cp.size <= index {
        return Ok(Evidence {
            index,
            proof_pending: Some(true),
            record: None,
            tree_size: None,
            inclusion_proof: None,
            checkpoint: None,
        });
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let bytes = st
            .ledger
            .record_bytes(index)
            .map_err(ledger_err)?
            .ok_or_else(|| ledger_err(format!("record {index} missing")))?;
        let proof = st
            .ledger
            .inclusion_proof(index, cp.size)
            .map_err(ledger_err)?;
        let leaf = merkle::leaf_hash(&bytes);
        merkle::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root)
            .map_err(|e| ledger_err(format!("self-check of inclusion proof failed: {e}")))?;
        Ok(Evidence {
            index,
            proof_pending: None,
            record: Some(STANDARD.encode(&bytes)),
            tree_size: Some(cp.size),
            inclusion_proof: Some(proof.iter().map(|h| STANDARD.encode(h)).collect()),
            checkpoint: Some(cp.note),
        })
    })
    .await
    .map_err(ledger_err)?
}

pub fn unknown(kind: &str, id: &str) -> LookupError {
    LookupError::Unknown(json!({ kind: id, "status": "unknown" }))
}

/// The parts of a credential's projection row a status answer is decided from.
struct Standing {
    expires_at: u64,
    issued_index: u64,
    revoked_index: Option<u64>,
    reason: u8,
}

/// The status, revocation details and the ledger evidence of the deciding record, and the
/// last second the status stays what it is (`u64::MAX` once revoked or expired).
async fn decide(
    state: &AppState,
    s: Standing,
) -> Result<(crate::wire::Standing, u64), LookupError> {
    let (status, revoked, index) = match s.revoked_index {
        Some(index) => {
            let at = state
                .ledger
                .record(index)
                .map_err(ledger_err)?
                .map(|r| r.timestamp_ms / 1000)
                .unwrap_or(0);
            let revoked = (rfc3339(at), reason_name(s.reason).to_string());
            (StatusName::Revoked, Some(revoked), index)
        }
        None if s.expires_at < state.clock.unix() => (StatusName::Expired, None, s.issued_index),
        None => (StatusName::Good, None, s.issued_index),
    };
    let valid_until = match status {
        StatusName::Good => s.expires_at,
        _ => u64::MAX,
    };
    let (revoked_at, reason) = revoked.unzip();
    let standing = crate::wire::Standing {
        status,
        revoked_at,
        reason,
        ledger: evidence(state, index).await?,
    };
    Ok((standing, valid_until))
}

/// The encoded JSON answer for `subject`: from the cache while nothing it depends on
/// changed (`status::answers`), else built and, once its proof leads to a checkpoint,
/// cached.
pub async fn encoded(state: &AppState, subject: Subject) -> Result<Bytes, LookupError> {
    let answers = &state.status.json;
    let size = state.checkpoint_size();
    if let Some(body) = size.and_then(|n| answers.get(&subject, n, state.clock.unix())) {
        state.metrics.status_json.cache(true);
        return Ok(body);
    }
    state.metrics.status_json.cache(false);
    let ticket = answers.ticket();
    let (body, standing, valid_until) = match &subject {
        Subject::Certificate(serial) => {
            let (answer, valid_until) = certificate(state, serial).await?;
            (encode(&answer)?, answer.standing.ledger, valid_until)
        }
        Subject::Token(jti) => {
            let (answer, valid_until) = token(state, jti).await?;
            (encode(&answer)?, answer.standing.ledger, valid_until)
        }
    };
    if let Some(tree_size) = standing.tree_size {
        answers.put(ticket, subject, tree_size, valid_until, body.clone());
    }
    Ok(body)
}

fn encode(answer: &impl serde::Serialize) -> Result<Bytes, LookupError> {
    serde_json::to_vec(answer)
        .map(Bytes::from)
        .map_err(ledger_err)
}

/// Status of a certificate by serial, and until when it holds.
async fn certificate(
    state: &AppState,
    serial: &[u8],
) -> Result<(CertificateStatus, u64), LookupError> {
    let id = hex::encode(serial);
    let row = Registry::open(&state.ledger)?
        .certificate(serial)?
        .ok_or_else(|| unknown("serial", &id))?;
    let standing = Standing {
        expires_at: row.not_after,
        issued_index: row.issued_index,
        revoked_index: row.revoked_index,
        reason: row.reason,
    };
    let (standing, valid_until) = decide(state, standing).await?;
    let answer = CertificateStatus {
        serial: id,
        owner: row.owner,
        not_after: rfc3339(row.not_after),
        standing,
    };
    Ok((answer, valid_until))
}

/// Status of a token by jti, and until when it holds.
async fn token(state: &AppState, jti: &str) -> Result<(TokenStatus, u64), LookupError> {
    let row = Registry::open(&state.ledger)?
        .token(jti)?
        .ok_or_else(|| unknown("jti", jti))?;
    let standing = Standing {
        expires_at: row.expires_at,
        issued_index: row.issued_index,
        revoked_index: row.revoked_index,
        reason: row.reason,
    };
    let (standing, valid_until) = decide(state, standing).await?;
    let answer = TokenStatus {
        jti: jti.to_string(),
        integration: row.integration,
        expires_at: rfc3339(row.expires_at),
        standing,
    };
    Ok((answer, valid_until))
}
