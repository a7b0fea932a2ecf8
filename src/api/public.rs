//! Public, unauthenticated routes: health, the signed checkpoint, the CA certificate.

use super::ApiError;
use crate::app::AppState;
use crate::wire::{ErrorBody, Health, Jwks};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/ledger/checkpoint", get(checkpoint))
        .route("/v1/ledger/checkpoint/cosigned", get(cosigned_checkpoint))
        .route("/v1/ca.pem", get(ca_pem))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/openapi.json", get(super::openapi::document))
}

/// 200 when the HSM is usable and the ledger takes writes, 503 otherwise; always reports
/// the ledger size. Served from the supervisor's state (`crate::health`), refreshed every
/// `HEALTH_PROBE_INTERVAL`: an anonymous request never takes an HSM session.
#[utoipa::path(
    get, path = "/healthz", tag = "public",
    responses(
        (status = 200, description = "HSM usable and ledger writable", body = Health, example = json!({
            "status": "ok", "hsm": "ok", "ledger": "ok", "ledger_size": 12
        })),
        (status = 503, description = "Degraded: `hsm` or `ledger` says why", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let health = crate::health::check(&state);
    let status = if health.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if health.ok() { "ok" } else { "degraded" }.into(),
        hsm: health.hsm_state().into(),
        ledger: health.ledger_state().into(),
        ledger_size: health.ledger_size,
    };
    (status, Json(body))
}

/// The latest signed checkpoint (C2SP signed note), as text.
#[utoipa::path(
    get, path = "/v1/ledger/checkpoint", tag = "public",
    responses(
        (status = 200, description = "Signed note: origin, tree size, root hash, signatures", content_type = "text/plain", body = String),
        (status = 503, description = "No checkpoint signed yet", body = ErrorBody),
    )
)]
pub async fn checkpoint(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let note = state.latest_checkpoint().ok_or(ApiError::Unavailable {
        what: "checkpoint",
        detail: "no checkpoint signed yet".into(),
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The newest checkpoint witnesses cosigned: the signed note followed by their
/// cosignature lines (C2SP tlog-cosignature). It may be older than `/v1/ledger/checkpoint`
/// while witnesses catch up.
#[utoipa::path(
    get, path = "/v1/ledger/checkpoint/cosigned", tag = "public",
    responses(
        (status = 200, description = "Signed note with the log's signature and the witnesses' cosignatures; `X-Credmint-Witnesses` counts them", content_type = "text/plain", body = String),
        (status = 404, description = "No `[[witness]]` is configured", body = ErrorBody),
        (status = 503, description = "No checkpoint cosigned yet", body = ErrorBody),
    )
)]
pub async fn cosigned_checkpoint(
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    if state.config.witnesses.is_empty() {
        return Err(ApiError::NotFound("no witness is configured".into()));
    }
    let cosigned =
        state
            .cosigned
            .read()
            .ok()
            .and_then(|c| c.clone())
            .ok_or(ApiError::Unavailable {
                what: "cosigned checkpoint",
                detail: "no checkpoint cosigned yet".into(),
            })?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::HeaderName::from_static("x-credmint-witnesses"),
                cosigned.witnesses.len().to_string(),
            ),
        ],
        cosigned.note,
    ))
}

/// The CA roots relying parties should trust: one before any CA rotation, every CA
/// generation still in its overlap (oldest first) after one.
#[utoipa::path(
    get, path = "/v1/ca.pem", tag = "public",
    responses((status = 200, description = "CA certificates, PEM", content_type = "application/x-pem-file", body = String))
)]
pub async fn ca_pem(State(state): State<AppState>) -> impl IntoResponse {
    let active = state.keys.current();
    let body = if active.cas.len() == 1 {
        active.cas[0].root.pem.clone()
    } else {
        active.roots_pem(state.clock.unix())
    };
    ([(header::CONTENT_TYPE, "application/x-pem-file")], body)
}

/// Token verification keys (JWKS, RFC 7517). Public keys only; cacheable. After a token
/// key rotation the old key stays listed until the longest token it signed has expired.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "public",
    responses((status = 200, description = "Public token keys", body = Jwks))
)]
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = state.keys.current().jwks(state.clock.unix());
    // Through the typed shape: a member it does not name (a private one) cannot pass.
    let jwks: Jwks = serde_json::from_value(crate::token::jwks(&keys))
        .map_err(|e| ApiError::Internal(format!("JWKS shape: {e}")))?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=300")], Json(jwks)))
}
