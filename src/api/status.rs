//! Public status routes (no authentication): JSON with ledger proofs.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::extract::ApiPath;
use super::ApiError;
use crate::app::AppState;
use crate::revoke::parse_serial;
use crate::wire::{CertificateStatus, ErrorBody, TokenStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/status/{serial}", get(certificate))
        .route("/v1/status/token/{jti}", get(token))
}

/// A certificate's status with the ledger record that decided it, its inclusion proof and
/// the signed checkpoint the proof leads to.
#[utoipa::path(
    get, path = "/v1/status/{serial}", operation_id = "certificate_status", tag = "status",
    params(("serial" = String, Path, description = "Hex serial", example = "5f1c2a9e0b7d4c3a8e6f1b2d3c4a5e6f")),
    responses(
        (status = 200, description = "good, revoked or expired", body = CertificateStatus),
        (status = 404, description = "Never issued here: the error shape plus `serial` and `\"status\": \"unknown\"`", body = ErrorBody),
    )
)]
pub async fn certificate(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let serial = parse_serial(&serial)?;
    Ok(Json(
        crate::status::json::certificate(&state, &serial).await?,
    ))
}

/// A token's status with its ledger evidence.
#[utoipa::path(
    get, path = "/v1/status/token/{jti}", operation_id = "token_status", tag = "status",
    params(("jti" = String, Path, description = "The token's jti", example = "01J9Z8W6QK0H6M1T2V3X4Y5Z6A")),
    responses(
        (status = 200, description = "good, revoked or expired", body = TokenStatus),
        (status = 404, description = "Never issued here: the error shape plus `jti` and `\"status\": \"unknown\"`", body = ErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    ApiPath(jti): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    if jti.is_empty() || jti.len() > 255 {
        return Err(ApiError::BadRequest("invalid jti".into()));
    }
    Ok(Json(crate::status::json::token(&state, &jti).await?))
}
