//! Revocation routes: operators revoke any credential or a whole integration; a workload
//! revokes its own certificate (and only that) when its job completes.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiJson, ApiPath, Operator, Workload};
use super::ApiError;
use crate::app::AppState;
use crate::revoke::{
    parse_reason, parse_serial, reason_name, revoke_integration, revoke_one, Revocation, Target,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/certificates/{serial}/revoke",
            post(admin_certificate),
        )
        .route("/v1/admin/tokens/{jti}/revoke", post(admin_token))
        .route(
            "/v1/admin/integrations/{name}/revoke-all",
            post(admin_integration),
        )
        .route("/v1/revoke", post(self_revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: String,
}

/// A serial from the path or body; malformed is a 400 `bad_request`.
fn serial_param(s: &str) -> Result<Vec<u8>, ApiError> {
    parse_serial(s).map_err(|e| ApiError::BadRequest(e.message))
}

fn answer(id_key: &str, id: String, reason: u8, r: Revocation) -> Json<serde_json::Value> {
    Json(json!({
        id_key: id,
        "status": "revoked",
        "reason": reason_name(reason),
        "ledger_index": r.ledger_index,
        "already_revoked": r.already_revoked,
    }))
}

async fn admin_certificate(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(serial): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    let serial = serial_param(&serial)?;
    let reason = parse_reason(&body.reason)?;
    let r = revoke_one(
        &state.sequencer,
        Target::Certificate(serial.clone()),
        reason,
        operator.actor(),
    )
    .await?;
    Ok(answer("serial", hex::encode(&serial), reason, r))
}

async fn admin_token(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(jti): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = parse_reason(&body.reason)?;
    let r = revoke_one(
        &state.sequencer,
        Target::Token(jti.clone()),
        reason,
        operator.actor(),
    )
    .await?;
    Ok(answer("jti", jti, reason, r))
}

async fn admin_integration(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = parse_reason(&body.reason)?;
    crate::api::lifecycle::load(&state, &name)?;
    let r = revoke_integration(&state.sequencer, &name, reason, operator.actor()).await?;
    Ok(Json(json!({
        "integration": name,
        "revoked_certificates": r.certificates,
        "revoked_tokens": r.tokens,
        "reason": reason_name(reason),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfRevoke {
    /// Must be the presented certificate's serial (default: it).
    serial: Option<String>,
    reason: Option<String>,
}

async fn self_revoke(
    State(state): State<AppState>,
    workload: Workload,
    ApiJson(body): ApiJson<SelfRevoke>,
) -> Result<impl IntoResponse, ApiError> {
    let serial = match body.serial {
        Some(s) => serial_param(&s)?,
        None => workload.serial.clone(),
    };
    if serial != workload.serial {
        return Err(ApiError::Forbidden(
            "a workload may revoke only the certificate it presents".into(),
        ));
    }
    let reason = parse_reason(body.reason.as_deref().unwrap_or("cessationOfOperation"))?;
    let r = revoke_one(
        &state.sequencer,
        Target::Certificate(serial.clone()),
        reason,
        workload.actor(),
    )
    .await?;
    Ok(answer("serial", hex::encode(&serial), reason, r))
}
