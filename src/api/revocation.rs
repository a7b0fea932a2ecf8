//! Revocation routes: operators revoke any credential or a whole integration; a workload
//! revokes its own certificate (and only that) when its job completes.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};

use super::extract::{ApiJson, ApiPath, Operator, Workload};
use super::ApiError;
use crate::app::AppState;
use crate::revoke::{
    parse_reason, parse_serial, reason_name, revoke_integration, revoke_one, Revocation, Target,
};
use crate::wire::{IntegrationRevoked, ReasonBody, Revoked, SelfRevoke, StatusName};

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

/// A serial from the path or body; malformed is a 400 `bad_request`.
fn serial_param(s: &str) -> Result<Vec<u8>, ApiError> {
    parse_serial(s).map_err(|e| ApiError::BadRequest(e.message))
}

/// What was revoked: a certificate (`serial`) or a token (`jti`).
enum Revokee {
    Serial(String),
    Jti(String),
}

fn answer(id: Revokee, reason: u8, r: Revocation) -> Json<Revoked> {
    let (serial, jti) = match id {
        Revokee::Serial(s) => (Some(s), None),
        Revokee::Jti(j) => (None, Some(j)),
    };
    Json(Revoked {
        serial,
        jti,
        status: StatusName::Revoked,
        reason: reason_name(reason).to_string(),
        ledger_index: r.ledger_index,
        already_revoked: r.already_revoked,
    })
}

/// Revokes a certificate (workload or operator); idempotent.
#[utoipa::path(
    post, path = "/v1/admin/certificates/{serial}/revoke", tag = "revocation",
    security(("operator_mtls" = [])),
    params(("serial" = String, Path, description = "Hex serial", example = "5f1c2a9e0b7d4c3a8e6f1b2d3c4a5e6f")),
    request_body(content = ReasonBody, example = json!({"reason": "keyCompromise"})),
    responses((status = 200, description = "Revoked (or already was)", body = Revoked, example = json!({
        "serial": "5f1c2a9e0b7d4c3a8e6f1b2d3c4a5e6f", "status": "revoked", "reason": "keyCompromise",
        "ledger_index": 14, "already_revoked": false
    })))
)]
pub async fn admin_certificate(
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
    Ok(answer(
        Revokee::Serial(hex::encode(&serial)),
        recorded_reason(&state, &serial, reason, &r)?,
        r,
    ))
}

/// The reason the ledger holds: an already revoked certificate keeps its own (asking
/// again with another reason changes nothing, except superseded -> another reason).
fn recorded_reason(
    state: &AppState,
    serial: &[u8],
    asked: u8,
    r: &Revocation,
) -> Result<u8, ApiError> {
    if !r.already_revoked {
        return Ok(asked);
    }
    let row = crate::registry::Registry::open(&state.ledger)?.certificate(serial)?;
    Ok(row.map_or(asked, |row| row.reason))
}

/// Revokes a token by its jti; idempotent.
#[utoipa::path(
    post, path = "/v1/admin/tokens/{jti}/revoke", tag = "revocation",
    security(("operator_mtls" = [])),
    params(("jti" = String, Path, description = "The token's jti", example = "01J9Z8W6QK0H6M1T2V3X4Y5Z6A")),
    request_body(content = ReasonBody, example = json!({"reason": "keyCompromise"})),
    responses((status = 200, description = "Revoked (or already was)", body = Revoked))
)]
pub async fn admin_token(
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
    Ok(answer(Revokee::Jti(jti), reason, r))
}

/// Revokes every live credential of an integration (it stays registered).
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/revoke-all", tag = "revocation",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = ReasonBody, example = json!({"reason": "keyCompromise"})),
    responses((status = 200, description = "What was revoked", body = IntegrationRevoked))
)]
pub async fn admin_integration(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reason = parse_reason(&body.reason)?;
    crate::api::lifecycle::load(&state, &name)?;
    let r = revoke_integration(&state.sequencer, &name, reason, operator.actor()).await?;
    Ok(Json(IntegrationRevoked {
        integration: name,
        revoked_certificates: r.certificates as u64,
        revoked_tokens: r.tokens as u64,
        reason: reason_name(reason).to_string(),
    }))
}

/// A workload revokes the certificate it presents (and only that), e.g. when its job ends.
#[utoipa::path(
    post, path = "/v1/revoke", tag = "revocation",
    security(("workload_mtls" = [])),
    request_body(content = SelfRevoke, example = json!({"reason": "cessationOfOperation"})),
    responses(
        (status = 200, description = "Revoked (or already was)", body = Revoked),
        (status = 403, description = "Not the presented certificate", body = crate::wire::ErrorBody),
    )
)]
pub async fn self_revoke(
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
    Ok(answer(Revokee::Serial(hex::encode(&serial)), reason, r))
}
