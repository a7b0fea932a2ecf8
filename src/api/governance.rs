//! Governance routes (operator mTLS): change an integration (narrowing at once, increases
//! as pending requests), approve a request as a different operator, recertify, and
//! decommission. Rules live in `crate::governance`; every outcome is a ledger event
//! appended before it takes effect.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use credmint_ledger::event::{
    ChangeKind, ChangeRequested, IntegrationChanged, IntegrationSpec, IntegrationStatus,
};

use super::extract::{ApiJson, ApiPath, Operator};
use super::lifecycle::{load, record_change, submit_change};
use super::{views, ApiError};
use crate::app::AppState;
use crate::governance::{
    check_review_by, classify, owner_change_reference, propose, ChangeBody, Classification,
};
use crate::registry::{
    parse_review_by, FieldError, PendingChange, Registry, CHANGE_APPROVED, CHANGE_SUPERSEDED,
};
use crate::sequencer::{spec_hash, Change, Command, Op, Refusal, SequenceError};
use crate::wire::{
    ApprovalBody, ChangeApplied, ChangeApproved, ChangeList, ChangeOutcome,
    ChangeRequested as RequestedView, ChangeState, ChangeStatus, ChangeUnchanged, ClosedChange,
    DecommissionBody, Decommissioned, ErrorBody, IntegrationUpdate, RecertifyBody,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/integrations/{name}/changes", post(change))
        .route("/v1/admin/integrations/{name}/recertify", post(recertify))
        .route(
            "/v1/admin/integrations/{name}/decommission",
            post(decommission),
        )
        .route("/v1/admin/changes", get(list_changes))
        .route("/v1/admin/changes/{index}", get(show_change))
        .route("/v1/admin/changes/{index}/approve", post(approve))
}

fn required(field: &'static str, v: Option<String>) -> Result<String, ApiError> {
    match v {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ApiError::Field(FieldError {
            field,
            message: "is required".into(),
        })),
    }
}

fn refuse_decommissioned(spec: &IntegrationSpec) -> Result<(), ApiError> {
    if spec.status == IntegrationStatus::Decommissioned {
        return Err(ApiError::Conflict(format!(
            "integration {:?} is decommissioned",
            spec.name
        )));
    }
    Ok(())
}

/// Names of the fields that differ between two states.
pub(super) fn differences(a: &IntegrationSpec, b: &IntegrationSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |changed: bool, name| {
        if changed {
            out.push(String::from(name))
        }
    };
    diff(a.scopes != b.scopes, "scopes");
    diff(a.max_ttl_secs != b.max_ttl_secs, "max_ttl_secs");
    diff(a.privilege_class != b.privilege_class, "privilege_class");
    diff(a.dns_names != b.dns_names, "dns_names");
    diff(
        a.allow_server_auth != b.allow_server_auth,
        "allow_server_auth",
    );
    diff(a.policy.audiences != b.policy.audiences, "audiences");
    diff(
        a.policy.acme_preauthorized != b.policy.acme_preauthorized,
        "acme_preauthorized",
    );
    diff(a.business_owner != b.business_owner, "business_owner");
    diff(a.technical_owner != b.technical_owner, "technical_owner");
    diff(a.purpose != b.purpose, "purpose");
    diff(a.approval_ref != b.approval_ref, "approval_ref");
    diff(a.review_by != b.review_by, "review_by");
    diff(a.status != b.status, "status");
    out
}

/// Changes an integration: narrowing and owner changes apply at once (200); an increase
/// of authority or a new purpose becomes a request a second operator approves (202).
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/changes", tag = "governance",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = ChangeBody, example = json!({
        "scopes": ["deploy:read"], "reason": "CHG-1301: deploys are read-only now"
    })),
    responses(
        (status = 200, description = "Applied at once, or `unchanged`", body = ChangeOutcome),
        (status = 202, description = "Recorded as a request awaiting a second operator", body = RequestedView),
        (status = 409, description = "Decommissioned, or changed concurrently", body = ErrorBody),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = required("reason", body.reason.clone())?;
    let before = load(&state, &name)?;
    refuse_decommissioned(&before)?;
    let next = propose(&before, &body, &state.config.ttl)?;
    let (narrowed, owners) = match classify(&before, &next) {
        Classification::Unchanged => {
            let unchanged = ChangeUnchanged {
                integration: views::integration_of(&state, &before),
                unchanged: true,
            };
            return Ok((StatusCode::OK, Json(ChangeOutcome::Unchanged(unchanged))));
        }
        Classification::NeedsApproval(why) => {
            let request = Change::Request(Box::new(ChangeRequested {
                proposed: next.clone(),
                reason: reason.clone(),
            }));
            let receipt = submit_change(&state, &operator, &before, request).await?;
            let index = receipt.first_index().unwrap_or_default();
            tracing::info!(integration = %name, operator = %operator.name, request_index = index, %why, "change requested; awaiting a second operator");
            let requested = RequestedView {
                status: ChangeStatus::Pending,
                request_index: index,
                integration: name,
                requested_by: operator.actor_name(),
                needs_approval_because: why,
                changes: differences(&before, &next),
                proposed: views::integration_of(&state, &next),
                ledger_index: index,
            };
            return Ok((
                StatusCode::ACCEPTED,
                Json(ChangeOutcome::Requested(requested)),
            ));
        }
        Classification::Immediate { narrowed, owners } => (narrowed, owners),
    };
    // Narrowing first (owners as before), then the owner change, in one batch.
    let mut events = Vec::new();
    if narrowed {
        let mut step = next.clone();
        step.business_owner = before.business_owner.clone();
        step.technical_owner = before.technical_owner.clone();
        events.push(IntegrationChanged {
            kind: ChangeKind::Narrowed,
            spec: step,
            reference: reason.clone(),
            request_index: 0,
        });
    }
    if owners {
        events.push(IntegrationChanged {
            kind: ChangeKind::OwnerChanged,
            spec: next.clone(),
            reference: owner_change_reference(&before, &next, &reason),
            request_index: 0,
        });
    }
    let receipt = submit_change(&state, &operator, &before, Change::Apply(events)).await?;
    tracing::info!(integration = %name, operator = %operator.name, narrowed, owners, "integration changed at once");
    let applied = [
        narrowed.then_some("narrowed"),
        owners.then_some("owner_changed"),
    ]
    .into_iter()
    .flatten()
    .map(String::from)
    .collect();
    let body = ChangeApplied {
        integration: views::integration_of(&state, &next),
        status_of_change: "applied".into(),
        applied,
        changes: differences(&before, &next),
        ledger_index: receipt.last_index(),
    };
    Ok((StatusCode::OK, Json(ChangeOutcome::Applied(body))))
}

fn pending_view(
    state: &AppState,
    p: &PendingChange,
    current: Option<&IntegrationSpec>,
) -> crate::wire::PendingChange {
    crate::wire::PendingChange {
        request_index: p.index,
        integration: p.integration.clone(),
        requested_by: p.requester.clone(),
        reason: p.reason.clone(),
        requested_at: views::rfc3339(p.requested_at),
        changes: current
            .map(|c| differences(c, &p.proposed))
            .unwrap_or_default(),
        proposed: views::integration_of(state, &p.proposed),
        status: ChangeStatus::Pending,
    }
}

/// Change requests awaiting a second operator.
#[utoipa::path(
    get, path = "/v1/admin/changes", tag = "governance",
    security(("operator_mtls" = [])),
    responses((status = 200, description = "Pending requests", body = ChangeList))
)]
pub async fn list_changes(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<impl IntoResponse, ApiError> {
    let registry = Registry::open(&state.ledger)?;
    let mut items = Vec::new();
    for p in registry.pending_changes()? {
        let current = registry.integration(&p.integration)?;
        items.push(pending_view(&state, &p, current.as_ref()));
    }
    Ok(Json(ChangeList { changes: items }))
}

/// Why a request that is not pending cannot be approved: 409 if it was, 404 if it never was.
fn not_pending(registry: &Registry, index: u64) -> Result<ApiError, ApiError> {
    Ok(match registry.closed_change(index)? {
        Some((CHANGE_APPROVED, by)) => ApiError::Conflict(format!(
            "change request {index} was already approved (ledger record {by})"
        )),
        Some((CHANGE_SUPERSEDED, by)) => ApiError::Conflict(format!(
            "change request {index} is stale: the integration changed since (ledger record {by}); request the change again"
        )),
        _ => ApiError::NotFound(format!("no change request at ledger index {index}")),
    })
}

/// One change request, pending or closed.
#[utoipa::path(
    get, path = "/v1/admin/changes/{index}", tag = "governance",
    security(("operator_mtls" = [])),
    params(super::openapi::IndexPath),
    responses((status = 200, description = "The request", body = ChangeState))
)]
pub async fn show_change(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(index): ApiPath<u64>,
) -> Result<impl IntoResponse, ApiError> {
    let registry = Registry::open(&state.ledger)?;
    if let Some(p) = registry.pending_change(index)? {
        let current = registry.integration(&p.integration)?;
        let pending = pending_view(&state, &p, current.as_ref());
        return Ok(Json(ChangeState::Pending(Box::new(pending))));
    }
    match registry.closed_change(index)? {
        Some((state_code, by)) => Ok(Json(ChangeState::Closed(ClosedChange {
            request_index: index,
            status: if state_code == CHANGE_APPROVED {
                ChangeStatus::Approved
            } else {
                ChangeStatus::Superseded
            },
            closed_by_ledger_index: by,
        }))),
        None => Err(not_pending(&registry, index)?),
    }
}

/// A different operator applies the proposed state exactly as requested.
#[utoipa::path(
    post, path = "/v1/admin/changes/{index}/approve", tag = "governance",
    security(("operator_mtls" = [])),
    params(super::openapi::IndexPath),
    request_body(content = ApprovalBody, example = json!({"approval_ref": "CHG-1302"})),
    responses(
        (status = 200, description = "Applied", body = ChangeApproved),
        (status = 403, description = "Self-approval, or an approver not independent of the requester", body = ErrorBody),
        (status = 409, description = "Already approved, or stale", body = ErrorBody),
    )
)]
pub async fn approve(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(index): ApiPath<u64>,
    ApiJson(body): ApiJson<ApprovalBody>,
) -> Result<impl IntoResponse, ApiError> {
    let approval_ref = required("approval_ref", body.approval_ref)?;
    let registry = Registry::open(&state.ledger)?;
    let Some(request) = registry.pending_change(index)? else {
        return Err(not_pending(&registry, index)?);
    };
    let current = registry
        .integration(&request.integration)?
        .ok_or_else(|| ApiError::Internal("change request for unknown integration".into()))?;
    drop(registry);
    // The sequencer decides (pending, not stale, not self-approved) at commit time; the
    // privilege-expansion signal commits in the same batch as the approval.
    let approval = Change::Approve {
        request_index: index,
        reference: approval_ref,
    };
    let op = Op::Change {
        integration: request.integration.clone(),
        base: request.base_hash,
        change: approval,
    };
    let receipt = match state
        .sequencer
        .submit(Command::new(operator.actor(), op))
        .await
    {
        Ok(r) => r,
        Err(SequenceError::Refused(Refusal::SelfApproval(why))) => {
            tracing::warn!(operator = %operator.name, request_index = index, "self-approval refused");
            return Err(ApiError::Forbidden(why));
        }
        Err(SequenceError::Refused(Refusal::Stale(_)))
            if spec_hash(&current) != request.base_hash =>
        {
            return Err(ApiError::Conflict(format!(
                "change request {index} is stale: the integration changed since; request the change again"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(integration = %request.integration, approver = %operator.name, requester = %request.requester, request_index = index, "change approved");
    Ok(Json(ChangeApproved {
        integration: views::integration_of(&state, &request.proposed),
        request_index: index,
        approved_by: operator.actor_name(),
        requested_by: request.requester,
        ledger_index: receipt.first_index(),
    }))
}

/// The owner (through an operator) confirms the integration is still needed and moves
/// review-by.
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/recertify", tag = "governance",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = RecertifyBody, example = json!({
        "review_by": "2027-09-30", "reference": "REV-2026-Q4"
    })),
    responses((status = 200, description = "Recertified", body = IntegrationUpdate))
)]
pub async fn recertify(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<RecertifyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let review_by = parse_review_by(&required("review_by", body.review_by)?)?;
    let reference = required("reference", body.reference)?;
    let before = load(&state, &name)?;
    refuse_decommissioned(&before)?;
    check_review_by(
        &state.config.governance,
        before.privilege_class,
        review_by,
        state.clock.unix(),
    )?;
    let mut after = before.clone();
    after.review_by = review_by;
    let body = record_change(
        &state,
        &operator,
        ChangeKind::Recertified,
        &before,
        after,
        reference,
    )
    .await?;
    Ok(Json(body))
}

/// Revokes every live credential and retires the name for good, in one ledger batch.
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/decommission", tag = "governance",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = DecommissionBody, example = json!({"reason": "CHG-1400: service retired"})),
    responses(
        (status = 200, description = "Decommissioned", body = Decommissioned),
        (status = 409, description = "Already decommissioned", body = ErrorBody),
    )
)]
pub async fn decommission(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DecommissionBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = required("reason", body.reason)?;
    let before = load(&state, &name)?;
    refuse_decommissioned(&before)?;
    let receipt =
        submit_change(&state, &operator, &before, Change::Decommission { reason }).await?;
    let (certificates, tokens) = receipt.outcome.revoked_counts();
    tracing::info!(integration = %name, operator = %operator.name, certificates, tokens, "integration decommissioned");
    let mut after = before.clone();
    after.status = IntegrationStatus::Decommissioned;
    Ok(Json(Decommissioned {
        integration: views::integration_of(&state, &after),
        revoked_certificates: certificates as u64,
        revoked_tokens: tokens as u64,
        ledger_index: receipt.last_index(),
    }))
}
