//! Operators under dual control. `POST /v1/admin/operators` renews the caller's own
//! certificate at once, or, for a new name, records a request; a different, independent
//! operator approves it at `POST /v1/admin/operators/requests/{index}/approve`, which
//! signs the new operator's certificate and returns it. Who may approve whom is
//! `credmint_ledger::governance::may_approve`, decided by the sequencer at commit.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use credmint_ledger::event::{Event, OperatorApproved, OperatorRequested};

use super::extract::{ApiJson, ApiPath, Operator};
use super::{views, ApiError};
use crate::app::AppState;
use crate::issuance::{pem_chain, sign_leaf};
use crate::issue::parse_csr;
use crate::operator::{operator_leaf, OperatorLeaf};
use crate::registry::{check_identifier, FieldError, Registry};
use crate::sequencer::{Command, Op};
use crate::wire::{
    AddOperator, ApproveOperator, ErrorBody, OperatorPending, OperatorRequestView, OperatorRequests,
};

fn required(field: &'static str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::Field(FieldError {
            field,
            message: "is required".into(),
        }));
    }
    Ok(())
}

/// Signs an operator certificate for `spki_der` with the CA in force (blocking HSM call
/// off the runtime, behind admission).
async fn sign_operator(
    state: &AppState,
    name: &str,
    approval_ref: &str,
    spki_der: &[u8],
) -> Result<(OperatorLeaf, String), ApiError> {
    if let Some(down) = state.hsm.unavailable() {
        return Err(down.into());
    }
    let admitted = state.admission.try_admit().map_err(|_| ApiError::Busy)?;
    let active = state.keys.current();
    let mut leaf = operator_leaf(
        name,
        approval_ref,
        &state.config.identity.trust_domain,
        &state.status_url,
        state.ledger.origin(),
        spki_der,
        state.clock.now(),
    );
    leaf.spec.crl_url = active.crl_url().to_string();
    let (act, spec, spki) = (active.clone(), leaf.spec.clone(), spki_der.to_vec());
    let der = tokio::task::spawn_blocking(move || {
        let _admitted = admitted;
        sign_leaf(&spec, &spki, &act.ca, &act.keys.ca)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok((leaf, pem_chain(&der, &active.ca)))
}

fn chain_response(chain: String) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        chain,
    )
        .into_response()
}

/// Requests a new operator (recorded; a second, independent operator approves it), or,
/// for the caller's own name, renews the caller's certificate at once.
#[utoipa::path(
    post, path = "/v1/admin/operators", tag = "operators",
    security(("operator_mtls" = [])),
    request_body(content = AddOperator, example = json!({
        "name": "carol", "csr": "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n",
        "approval_ref": "HR-881"
    })),
    responses(
        (status = 201, description = "Own certificate renewed: the chain", content_type = "application/pem-certificate-chain", body = String),
        (status = 202, description = "Request recorded", body = OperatorPending),
    )
)]
pub async fn add_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<AddOperator>,
) -> Result<Response, ApiError> {
    check_identifier("name", &req.name)?;
    required("approval_ref", &req.approval_ref)?;
    let csr = parse_csr(req.csr.as_bytes())?;
    if req.name == operator.name {
        // Renewing one's own certificate keeps the name and needs no second operator.
        let (leaf, chain) =
            sign_operator(&state, &req.name, &req.approval_ref, &csr.spki_der).await?;
        let Event::OperatorCertIssued(cert) = leaf.event else {
            return Err(ApiError::Internal("operator leaf without its event".into()));
        };
        state
            .sequencer
            .submit(Command::new(
                operator.actor(),
                Op::OperatorCertificate(cert),
            ))
            .await?;
        tracing::info!(operator = %operator.name, "operator renewed its certificate");
        return Ok(chain_response(chain));
    }
    let request = OperatorRequested::new(req.name.clone(), csr.spki_der, req.approval_ref);
    let receipt = state
        .sequencer
        .submit(Command::new(operator.actor(), Op::RequestOperator(request)))
        .await?;
    let index = receipt.first_index().unwrap_or_default();
    tracing::info!(new_operator = %req.name, by = %operator.name, request_index = index, "operator requested; awaiting a second operator");
    Ok((
        StatusCode::ACCEPTED,
        Json(OperatorPending {
            status: "pending".into(),
            request_index: index,
            name: req.name,
            requested_by: operator.actor_name(),
            approve_at: format!("/v1/admin/operators/requests/{index}/approve"),
            ledger_index: index,
        }),
    )
        .into_response())
}

/// Operator requests awaiting approval.
#[utoipa::path(
    get, path = "/v1/admin/operators/requests", tag = "operators",
    security(("operator_mtls" = [])),
    responses((status = 200, description = "Pending requests", body = OperatorRequests))
)]
pub async fn list_requests(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<impl IntoResponse, ApiError> {
    let requests = Registry::open(&state.ledger)?.operator_requests()?;
    let items: Vec<_> = requests
        .iter()
        .map(|r| OperatorRequestView {
            request_index: r.index,
            name: r.name.clone(),
            requested_by: format!("operator:{}", r.requester),
            approval_ref: r.approval_ref.clone(),
            requested_at: views::rfc3339(r.requested_at),
            key_fingerprint: hex::encode(
                OperatorRequested::new(r.name.clone(), r.spki_der.clone(), r.approval_ref.clone())
                    .key_fingerprint,
            ),
        })
        .collect();
    Ok(Json(OperatorRequests { requests: items }))
}

/// Signs and records the requested operator's certificate; the answer is its chain (hand
/// it to the new operator, who holds the key).
#[utoipa::path(
    post, path = "/v1/admin/operators/requests/{index}/approve", tag = "operators",
    security(("operator_mtls" = [])),
    params(super::openapi::IndexPath),
    request_body(content = ApproveOperator, example = json!({"approval_ref": "HR-881"})),
    responses(
        (status = 201, description = "The new operator's certificate chain", content_type = "application/pem-certificate-chain", body = String),
        (status = 403, description = "Self-approval, or an approver not independent of the requester", body = ErrorBody),
    )
)]
pub async fn approve_request(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(index): ApiPath<u64>,
    ApiJson(body): ApiJson<ApproveOperator>,
) -> Result<Response, ApiError> {
    let request = Registry::open(&state.ledger)?
        .operator_request(index)?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no pending operator request at ledger index {index}"
            ))
        })?;
    // Cheap refusal before HSM time; the sequencer applies the full rule at commit.
    if request.requester == operator.name {
        return Err(ApiError::Forbidden(format!(
            "self-approval is refused: operator request {index} was made by operator:{}; a different operator must approve it",
            request.requester
        )));
    }
    let approval_ref = body
        .approval_ref
        .unwrap_or_else(|| request.approval_ref.clone());
    required("approval_ref", &approval_ref)?;
    let (leaf, chain) =
        sign_operator(&state, &request.name, &approval_ref, &request.spki_der).await?;
    let Event::OperatorCertIssued(cert) = leaf.event else {
        return Err(ApiError::Internal("operator leaf without its event".into()));
    };
    let approval = OperatorApproved {
        request_index: index,
        name: cert.name,
        serial: cert.serial,
        not_after: cert.not_after,
        key_fingerprint: cert.key_fingerprint,
    };
    state
        .sequencer
        .submit(Command::new(
            operator.actor(),
            Op::ApproveOperator(approval),
        ))
        .await?;
    tracing::info!(new_operator = %request.name, requester = %request.requester, approver = %operator.name, request_index = index, "operator approved and issued");
    Ok(chain_response(chain))
}
