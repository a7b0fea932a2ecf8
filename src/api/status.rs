//! Public status routes (no authentication): JSON with ledger proofs.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::extract::ApiPath;
use super::ApiError;
use crate::app::AppState;
use crate::revoke::parse_serial;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/status/{serial}", get(certificate))
        .route("/v1/status/token/{jti}", get(token))
}

async fn certificate(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let serial = parse_serial(&serial)?;
    Ok(Json(
        crate::status::json::certificate(&state, &serial).await?,
    ))
}

async fn token(
    State(state): State<AppState>,
    ApiPath(jti): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    if jti.is_empty() || jti.len() > 255 {
        return Err(ApiError::BadRequest("invalid jti".into()));
    }
    Ok(Json(crate::status::json::token(&state, &jti).await?))
}
