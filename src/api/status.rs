//! Public status routes (no authentication): JSON with ledger proofs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::extract::ApiPath;
use super::ApiError;
use crate::app::AppState;
use crate::revoke::parse_serial;
use crate::status::answers::Subject;
use crate::status::json::encoded;
use crate::status::receipt::{self, Event};
use crate::wire::{CertificateStatus, ErrorBody, TokenStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/status/{serial}", get(certificate))
        .route("/v1/status/token/{jti}", get(token))
        .route("/v1/status/{serial}/receipt", get(certificate_receipt))
        .route("/v1/status/token/{jti}/receipt", get(token_receipt))
}

fn check_jti(jti: &str) -> Result<(), ApiError> {
    if jti.is_empty() || jti.len() > 255 {
        return Err(ApiError::BadRequest("invalid jti".into()));
    }
    Ok(())
}

/// `?event=issued|revoked` of a receipt request.
fn event_of(query: Option<&str>) -> Result<Option<Event>, ApiError> {
    match query {
        None | Some("") => Ok(None),
        Some("event=issued") => Ok(Some(Event::Issued)),
        Some("event=revoked") => Ok(Some(Event::Revoked)),
        Some(_) => Err(ApiError::BadRequest(
            "the only query is event=issued or event=revoked".into(),
        )),
    }
}

fn receipt_body(text: String) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text)
}

/// The receipt of a certificate's issuance or revocation: a C2SP tlog-proof whose `extra`
/// line is the ledger record, against the newest witness-cosigned checkpoint covering it
/// (else the latest), for `credmint-audit verify-proof`.
#[utoipa::path(
    get, path = "/v1/status/{serial}/receipt", operation_id = "certificate_receipt", tag = "status",
    params(
        ("serial" = String, Path, description = "Hex serial"),
        ("event" = Option<String>, Query, description = "`issued` or `revoked` (default: the revocation if revoked, else the issuance)"),
    ),
    responses(
        (status = 200, description = "c2sp.org/tlog-proof@v1 text", content_type = "text/plain", body = String),
        (status = 404, description = "Never issued here, or `event=revoked` of a credential that is not revoked", body = ErrorBody),
        (status = 503, description = "No checkpoint covers the record yet (`Retry-After`)", body = ErrorBody),
    )
)]
pub async fn certificate_receipt(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    let serial = parse_serial(&serial)?;
    let event = event_of(uri.query())?;
    let text = receipt::for_subject(&state, &Subject::Certificate(serial), event).await?;
    Ok(receipt_body(text))
}

/// The receipt of a token's issuance or revocation (see the certificate receipt).
#[utoipa::path(
    get, path = "/v1/status/token/{jti}/receipt", operation_id = "token_receipt", tag = "status",
    params(
        ("jti" = String, Path, description = "The token's jti"),
        ("event" = Option<String>, Query, description = "`issued` or `revoked`"),
    ),
    responses(
        (status = 200, description = "c2sp.org/tlog-proof@v1 text", content_type = "text/plain", body = String),
        (status = 404, description = "Never issued here, or not revoked", body = ErrorBody),
        (status = 503, description = "No checkpoint covers the record yet", body = ErrorBody),
    )
)]
pub async fn token_receipt(
    State(state): State<AppState>,
    ApiPath(jti): ApiPath<String>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    check_jti(&jti)?;
    let event = event_of(uri.query())?;
    let text = receipt::for_subject(&state, &Subject::Token(jti), event).await?;
    Ok(receipt_body(text))
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
    check_jti(&jti)?;
    let body = encoded(&state, Subject::Token(jti)).await?;
    Ok(json_body(body))
}

/// An already-encoded JSON answer (what `axum::Json` would have written).
fn json_body(body: Bytes) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], body)
}
