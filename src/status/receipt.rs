//! Receipts: the C2SP tlog-proof (`credmint_ledger::receipt`) of the ledger record that
//! issued or revoked a credential, against the newest witness-cosigned checkpoint that
//! covers it (else the latest checkpoint), so its holder can prove the event offline to
//! anyone who pins the ledger key, with `credmint-audit verify-proof`.
//!
//! Public like the JSON status: it reveals the same record the status answer already
//! carries, keyed by the same serial or jti, nothing else of the ledger.

use credmint_ledger::merkle;
use credmint_ledger::receipt::Receipt;

use crate::app::AppState;
use crate::registry::Registry;
use crate::status::answers::Subject;
use crate::status::json::{LookupError, COVER_WAIT};

/// Which of the credential's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Issued,
    Revoked,
}

/// The receipt of `subject`'s `event` record (default: the revocation if revoked, else
/// the issuance), as text.
pub async fn for_subject(
    state: &AppState,
    subject: &Subject,
    event: Option<Event>,
) -> Result<String, LookupError> {
    let registry = Registry::open(&state.ledger)?;
    let (issued, revoked) = match subject {
        Subject::Certificate(serial) => registry
            .certificate(serial)?
            .map(|r| (r.issued_index, r.revoked_index))
            .ok_or_else(|| super::json::unknown("serial", &hex::encode(serial)))?,
        Subject::Token(jti) => registry
            .token(jti)?
            .map(|r| (r.issued_index, r.revoked_index))
            .ok_or_else(|| super::json::unknown("jti", jti))?,
    };
    let index = match event {
        Some(Event::Issued) => issued,
        Some(Event::Revoked) => revoked.ok_or(LookupError::NotRevoked)?,
        None => revoked.unwrap_or(issued),
    };
    receipt(state, index).await
}

/// The receipt of record `index`, waiting briefly for a checkpoint that covers it.
pub async fn receipt(state: &AppState, index: u64) -> Result<String, LookupError> {
    if state.hsm.unavailable().is_none() {
        state.checkpoints.covered(index + 1, COVER_WAIT).await;
    }
    let cosigned = state
        .cosigned
        .read()
        .ok()
        .and_then(|c| c.clone())
        .filter(|c| c.size > index)
        .map(|c| (c.note, c.size));
    let (checkpoint, size) = cosigned
        .or_else(|| {
            state
                .checkpoint_view()
                .filter(|c| c.size > index)
                .map(|c| (c.note, c.size))
        })
        .ok_or(LookupError::ProofPending(index))?;
    let ledger = state.ledger.clone();
    let ledger_err = |e: &dyn std::fmt::Display| LookupError::Ledger(e.to_string());
    tokio::task::spawn_blocking(move || {
        let bytes = ledger
            .record_bytes(index)
            .map_err(|e| ledger_err(&e))?
            .ok_or_else(|| ledger_err(&format!("record {index} missing")))?;
        let proof = ledger
            .inclusion_proof(index, size)
            .map_err(|e| ledger_err(&e))?;
        // The root the receipt itself states, so the self-check is of what is handed out.
        let root = credmint_ledger::note::Note::parse(&checkpoint)
            .and_then(|n| credmint_ledger::Checkpoint::parse_body(&n.text))
            .map_err(|e| ledger_err(&e))?
            .root;
        merkle::verify_inclusion(index, size, &merkle::leaf_hash(&bytes), &proof, &root)
            .map_err(|e| ledger_err(&format!("self-check of inclusion proof failed: {e}")))?;
        let r = Receipt {
            index,
            record: Some(bytes),
            proof,
            checkpoint,
        };
        Ok(r.format())
    })
    .await
    .map_err(|e| ledger_err(&e))?
}
