//! `POST /v1/admin/operators`: an operator issues a certificate for another operator's CSR.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::extract::{ApiJson, Operator};
use super::ApiError;
use crate::app::AppState;
use crate::issuance::{pem_chain, sign_leaf};
use crate::issue::parse_csr;
use crate::ledger_writer::{Precondition, Submission};
use crate::operator::operator_leaf;
use crate::registry::check_identifier;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOperator {
    name: String,
    /// PEM PKCS#10 request; the new operator keeps the private key.
    csr: String,
    approval_ref: String,
}

pub async fn add_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<AddOperator>,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &req.name)?;
    if req.approval_ref.trim().is_empty() {
        return Err(ApiError::Field(crate::registry::FieldError {
            field: "approval_ref",
            message: "is required".into(),
        }));
    }
    let csr = parse_csr(req.csr.as_bytes())?;
    let active = state.keys.current();
    let mut leaf = operator_leaf(
        &req.name,
        &req.approval_ref,
        &state.config.identity.trust_domain,
        &state.public_url,
        state.ledger.origin(),
        &csr.spki_der,
        state.clock.now(),
    );
    leaf.spec.crl_url = active.crl_url().to_string();
    let (act, spec, spki) = (active.clone(), leaf.spec.clone(), csr.spki_der.clone());
    let der = tokio::task::spawn_blocking(move || sign_leaf(&spec, &spki, &act.ca, &act.keys.ca))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    state
        .writer
        .submit(Submission {
            actor: operator.actor(),
            events: vec![leaf.event],
            preconditions: if req.name == operator.name {
                // Renewing one's own certificate keeps the name.
                vec![Precondition::SerialUnused(leaf.spec.serial.to_vec())]
            } else {
                vec![
                    Precondition::SerialUnused(leaf.spec.serial.to_vec()),
                    Precondition::OperatorNameFree(req.name.clone()),
                ]
            },
        })
        .await?;
    tracing::info!(new_operator = %req.name, by = %operator.name, "operator certificate issued");
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        pem_chain(&der, &active.ca),
    ))
}
