//! `POST /v1/admin/keys/{role}/rotate` (operator): rotates the CA, token or ledger key
//! inside the running appliance. See `crate::rotation`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::extract::{ApiJson, ApiPath, Operator};
use super::ApiError;
use crate::app::AppState;
use crate::rotation::{parse_role, rotate};
use crate::wire::{ReasonBody, Rotated};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/keys/{role}/rotate", post(rotate_key))
}

/// Rotates the CA, token or ledger key: a new key inside the HSM, introduced by a ledger
/// event signed by the old and the new key.
#[utoipa::path(
    post, path = "/v1/admin/keys/{role}/rotate", tag = "keys",
    security(("operator_mtls" = [])),
    params(("role" = String, Path, description = "ca, token or ledger", example = "token")),
    request_body(content = ReasonBody, example = json!({"reason": "scheduled rotation"})),
    responses((status = 200, description = "Rotated", body = Rotated))
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    ApiPath(role): ApiPath<String>,
    operator: Operator,
    ApiJson(req): ApiJson<ReasonBody>,
) -> Result<Json<Rotated>, ApiError> {
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
