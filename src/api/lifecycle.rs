//! Integration lifecycle changes that need no second approver: suspend and resume.
//! Each is an `integration-changed` ledger event carrying the acting operator and reason.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use credmint_ledger::event::{ChangeKind, IntegrationChanged, IntegrationSpec, IntegrationStatus};
use serde::Deserialize;
use serde_json::json;

use super::error::echo;
use super::extract::{ApiJson, ApiPath, Operator};
use super::{views, ApiError};
use crate::app::AppState;
use crate::registry::Registry;
use crate::sequencer::{spec_hash, Change, Command, Op, Receipt};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/integrations/{name}/suspend", post(suspend))
        .route("/v1/admin/integrations/{name}/resume", post(resume))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    reason: String,
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
/// Returns the JSON view of the new state.
pub async fn record_change(
    state: &AppState,
    operator: &Operator,
    kind: ChangeKind,
    before: &IntegrationSpec,
    after: IntegrationSpec,
    reference: String,
) -> Result<serde_json::Value, ApiError> {
    let event = IntegrationChanged {
        kind,
        spec: after.clone(),
        reference,
        request_index: 0,
    };
    let receipt = submit_change(state, operator, before, Change::Apply(vec![event])).await?;
    tracing::info!(integration = %after.name, operator = %operator.name, change = ?kind, "integration changed");
    let mut body = views::integration_of(state, &after);
    body["ledger_index"] = json!(receipt.first_index());
    Ok(body)
}

async fn set_status(
    state: AppState,
    operator: Operator,
    name: String,
    reason: String,
    to: IntegrationStatus,
) -> Result<Json<serde_json::Value>, ApiError> {
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
        let mut body = views::integration_of(&state, &before);
        body["unchanged"] = json!(true);
        return Ok(Json(body));
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

async fn suspend(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(r): ApiJson<Reason>,
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

async fn resume(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(r): ApiJson<Reason>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(state, operator, name, r.reason, IntegrationStatus::Active).await
}
