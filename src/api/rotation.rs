//! `POST /v1/admin/keys/{role}/rotate` (operator): rotates the CA, token or ledger key
//! inside the running appliance. See `crate::rotation`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiPath, Operator};
use super::ApiError;
use crate::app::AppState;
use crate::rotation::{parse_role, rotate};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/keys/{role}/rotate", post(rotate_key))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    reason: String,
}

async fn rotate_key(
    State(state): State<AppState>,
    ApiPath(role): ApiPath<String>,
    operator: Operator,
    ApiJson(req): ApiJson<RotateKey>,
) -> Result<Json<Value>, ApiError> {
    let role = parse_role(&role).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no key role {}: use ca, token or ledger",
            super::error::echo(&role)
        ))
    })?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 256 {
        return Err(ApiError::Field(crate::registry::FieldError {
            field: "reason",
            message: "is required (at most 256 bytes)".into(),
        }));
    }
    Ok(Json(rotate(&state, role, operator.actor(), reason).await?))
}
