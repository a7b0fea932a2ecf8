//! Public status routes (no authentication): JSON with ledger proofs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::extract::ApiPath;
use super::ApiError;
use crate::app::AppState;
use crate::revoke::parse_serial;
use crate::status::answers::Subject;
use crate::status::json::encoded;
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
    let body = encoded(&state, Subject::Certificate(serial)).await?;
    Ok(json_body(body))
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
    let body = encoded(&state, Subject::Token(jti)).await?;
    Ok(json_body(body))
}

/// An already-encoded JSON answer (what `axum::Json` would have written).
fn json_body(body: Bytes) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], body)
}
