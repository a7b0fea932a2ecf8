//! Integration lifecycle changes that need no second approver: suspend and resume.
//! Each is an `integration-changed` ledger event carrying the acting operator and reason.

use super::error::echo;
use super::extract::{ApiJson, ApiPath, Operator};
use super::{views, ApiError};
use crate::app::AppState;
use crate::registry::Registry;
use crate::sequencer::{spec_hash, Change, Command, Op, Receipt};
use crate::wire::{IntegrationUpdate, ReasonBody};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use credmint_ledger::event::{ChangeKind, IntegrationChanged, IntegrationSpec, IntegrationStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/integrations/{name}/suspend", post(suspend))
        .route("/v1/admin/integrations/{name}/resume", post(resume))
}

/// Loads an integration or answers 404.
pub fn load(state: &AppState, name: &str) -> Result<IntegrationSpec, ApiError> {
    Registry::open(&state.ledger)?
        .integration(name)?
        .ok_or_else(|| ApiError::NotFound(format!("no integration named {}", echo(name))))
}

/// Sequences `change` of the integration in state `before`; refused if the integration
/// changed in between. Returns the receipt.
pub async fn submit_change(
    state: &AppState,
    operator: &Operator,
    before: &IntegrationSpec,
    change: Change,
) -> Result<Receipt, ApiError> {
    let op = Op::Change {
        integration: before.name.clone(),
        base: spec_hash(before),
        change,
    };
    Ok(state
        .sequencer
        .submit(Command::new(operator.actor(), op))
        .await?)
}

/// Records an `IntegrationChanged` from `before` to `after` that applies at once.
/// Returns the new state.
pub async fn record_change(
    state: &AppState,
    operator: &Operator,
    kind: ChangeKind,
    before: &IntegrationSpec,
    after: IntegrationSpec,
    reference: String,
) -> Result<IntegrationUpdate, ApiError> {
    let event = IntegrationChanged {
        kind,
        spec: after.clone(),
        reference,
        request_index: 0,
    };
    let receipt = submit_change(state, operator, before, Change::Apply(vec![event])).await?;
    tracing::info!(integration = %after.name, operator = %operator.name, change = ?kind, "integration changed");
    Ok(IntegrationUpdate {
        integration: views::integration_of(state, &after),
        ledger_index: receipt.first_index(),
        unchanged: None,
    })
}

async fn set_status(
    state: AppState,
    operator: Operator,
    name: String,
    reason: String,
    to: IntegrationStatus,
) -> Result<Json<IntegrationUpdate>, ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::Field(crate::registry::FieldError {
            field: "reason",
            message: "is required".into(),
        }));
    }
    let before = load(&state, &name)?;
    if before.status == IntegrationStatus::Decommissioned {
        return Err(ApiError::Conflict(format!(
            "integration {name:?} is decommissioned"
        )));
    }
    if before.status == to {
        return Ok(Json(IntegrationUpdate {
            integration: views::integration_of(&state, &before),
            ledger_index: None,
            unchanged: Some(true),
        }));
    }
    let kind = match to {
        IntegrationStatus::Suspended => ChangeKind::Suspended,
        _ => ChangeKind::Resumed,
    };
    let mut after = before.clone();
    after.status = to;
    Ok(Json(
        record_change(&state, &operator, kind, &before, after, reason).await?,
    ))
}

/// Stops all issuance to the integration until it is resumed (live credentials stay).
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/suspend", tag = "integrations",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = ReasonBody, example = json!({"reason": "INC-42: suspected misuse"})),
    responses(
        (status = 200, description = "Suspended (or already was: `unchanged`)", body = IntegrationUpdate),
        (status = 409, description = "Decommissioned", body = crate::wire::ErrorBody),
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(r): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(
        state,
        operator,
        name,
        r.reason,
        IntegrationStatus::Suspended,
    )
    .await
}

/// Lets a suspended integration receive credentials again.
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/resume", tag = "integrations",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = ReasonBody, example = json!({"reason": "INC-42 closed"})),
    responses(
        (status = 200, description = "Active again (or already was: `unchanged`)", body = IntegrationUpdate),
        (status = 409, description = "Decommissioned", body = crate::wire::ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(r): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(state, operator, name, r.reason, IntegrationStatus::Active).await
}
