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
use serde::Deserialize;
use serde_json::{json, Value};

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
pub(super) fn differences(a: &IntegrationSpec, b: &IntegrationSpec) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut diff = |changed: bool, name| {
        if changed {
            out.push(name)
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
    diff(a.business_owner != b.business_owner, "business_owner");
    diff(a.technical_owner != b.technical_owner, "technical_owner");
    diff(a.purpose != b.purpose, "purpose");
    diff(a.approval_ref != b.approval_ref, "approval_ref");
    diff(a.review_by != b.review_by, "review_by");
    diff(a.status != b.status, "status");
    out
}

/// `POST /v1/admin/integrations/{name}/changes`.
async fn change(
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
            let mut v = views::integration_of(&state, &before);
            v["unchanged"] = json!(true);
            return Ok((StatusCode::OK, Json(v)));
        }
        Classification::NeedsApproval(why) => {
            let request = Change::Request(Box::new(ChangeRequested {
                proposed: next.clone(),
                reason: reason.clone(),
            }));
            let receipt = submit_change(&state, &operator, &before, request).await?;
            let index = receipt.first_index().unwrap_or_default();
            tracing::info!(integration = %name, operator = %operator.name, request_index = index, %why, "change requested; awaiting a second operator");
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({
                    "status": "pending",
                    "request_index": index,
                    "integration": name,
                    "requested_by": operator.actor_name(),
                    "needs_approval_because": why,
                    "changes": differences(&before, &next),
                    "proposed": views::integration_of(&state, &next),
                    "ledger_index": index,
                })),
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
    let mut v = views::integration_of(&state, &next);
    v["status_of_change"] = json!("applied");
    v["applied"] = json!([
        narrowed.then_some("narrowed"),
        owners.then_some("owner_changed")
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>());
    v["changes"] = json!(differences(&before, &next));
    v["ledger_index"] = json!(receipt.last_index());
    Ok((StatusCode::OK, Json(v)))
}

fn pending_view(state: &AppState, p: &PendingChange, current: Option<&IntegrationSpec>) -> Value {
    json!({
        "request_index": p.index,
        "integration": p.integration,
        "requested_by": p.requester,
        "reason": p.reason,
        "requested_at": views::rfc3339(p.requested_at),
        "changes": current.map(|c| differences(c, &p.proposed)).unwrap_or_default(),
        "proposed": views::integration_of(state, &p.proposed),
        "status": "pending",
    })
}

/// `GET /v1/admin/changes`: requests awaiting a second operator.
async fn list_changes(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<impl IntoResponse, ApiError> {
    let registry = Registry::open(&state.ledger)?;
    let mut items = Vec::new();
    for p in registry.pending_changes()? {
        let current = registry.integration(&p.integration)?;
        items.push(pending_view(&state, &p, current.as_ref()));
    }
    Ok(Json(json!({ "changes": items })))
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

/// `GET /v1/admin/changes/{index}`.
async fn show_change(
    State(state): State<AppState>,
    _operator: Operator,
    ApiPath(index): ApiPath<u64>,
) -> Result<impl IntoResponse, ApiError> {
    let registry = Registry::open(&state.ledger)?;
    if let Some(p) = registry.pending_change(index)? {
        let current = registry.integration(&p.integration)?;
        return Ok(Json(pending_view(&state, &p, current.as_ref())));
    }
    match registry.closed_change(index)? {
        Some((state_code, by)) => Ok(Json(json!({
            "request_index": index,
            "status": if state_code == CHANGE_APPROVED { "approved" } else { "superseded" },
            "closed_by_ledger_index": by,
        }))),
        None => Err(not_pending(&registry, index)?),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    approval_ref: Option<String>,
}

/// `POST /v1/admin/changes/{index}/approve`: a different operator applies the proposed
/// state exactly as requested.
async fn approve(
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
    let mut v = views::integration_of(&state, &request.proposed);
    v["request_index"] = json!(index);
    v["approved_by"] = json!(operator.actor_name());
    v["requested_by"] = json!(request.requester);
    v["ledger_index"] = json!(receipt.first_index());
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecertifyBody {
    review_by: Option<String>,
    reference: Option<String>,
}

/// `POST /v1/admin/integrations/{name}/recertify`: the owner (through an operator)
/// confirms the integration is still needed and moves review-by.
async fn recertify(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecommissionBody {
    reason: Option<String>,
}

/// `POST /v1/admin/integrations/{name}/decommission`: revokes every live credential and
/// retires the name, in one ledger batch.
async fn decommission(
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
    let mut v = views::integration_of(&state, &after);
    v["revoked_certificates"] = json!(certificates);
    v["revoked_tokens"] = json!(tokens);
    v["ledger_index"] = json!(receipt.last_index());
    Ok(Json(v))
}
