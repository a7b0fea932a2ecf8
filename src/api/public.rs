//! Public, unauthenticated routes: health, the signed checkpoint, the CA certificate.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::ApiError;
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/ledger/checkpoint", get(checkpoint))
        .route("/v1/ca.pem", get(ca_pem))
        .route("/.well-known/jwks.json", get(jwks))
}

/// 200 when the HSM is usable and the ledger takes writes, 503 otherwise; always reports
/// the ledger size. Served from the supervisor's state (`crate::health`), refreshed every
/// `HEALTH_PROBE_INTERVAL`.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let health = crate::health::check(&state);
    let status = if health.ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if health.ok() { "ok" } else { "degraded" },
        "hsm": health.hsm_state(),
        "ledger": health.ledger_state(),
        "ledger_size": health.ledger_size,
    });
    (status, Json(body))
}

/// The latest signed checkpoint (C2SP signed note), as text.
async fn checkpoint(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let note = state.latest_checkpoint().ok_or(ApiError::Unavailable {
        what: "checkpoint",
        detail: "no checkpoint signed yet".into(),
    })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note))
}

/// The CA roots relying parties should trust: one before any CA rotation, every CA
/// generation still in its overlap (oldest first) after one.
async fn ca_pem(State(state): State<AppState>) -> impl IntoResponse {
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
async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = state.keys.current().jwks(state.clock.unix());
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(crate::token::jwks(&keys)),
    ))
}
