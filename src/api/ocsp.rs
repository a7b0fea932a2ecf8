//! OCSP (RFC 6960, GET and POST) and the CRL (RFC 5280, DER) for relying systems that
//! already speak them. Both are answered from the status cache.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;

use super::ApiError;
use crate::app::AppState;
use crate::status::cache::{answer, current_crl, OCSP_VALIDITY_SECS};
use crate::status::ocsp::{error_response, ErrorStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/crl", get(crl))
        .route("/crl/{generation}", get(crl_of_generation))
}

fn ocsp_reply(der: Vec<u8>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/ocsp-response".to_string(),
            ),
            (
                header::CACHE_CONTROL,
                format!(
                    "max-age={}, public, no-transform, must-revalidate",
                    OCSP_VALIDITY_SECS / 2
                ),
            ),
        ],
        der,
    )
}

async fn ocsp_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/ocsp-request") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ocsp_reply(error_response(ErrorStatus::MalformedRequest)),
        )
            .into_response();
    }
    ocsp_reply(answer(&state, &body).await).into_response()
}

/// RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
async fn ocsp_get(State(state): State<AppState>, Path(request): Path<String>) -> impl IntoResponse {
    // axum has already percent-decoded the path; accept standard and URL-safe base64.
    let cleaned: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned));
    match der {
        Ok(der) => ocsp_reply(answer(&state, &der).await).into_response(),
        Err(_) => ocsp_reply(error_response(ErrorStatus::MalformedRequest)).into_response(),
    }
}

/// The CRL of the genesis CA (generation 0); its leaves name `/crl`.
async fn crl(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    crl_reply(&state, 0).await
}

/// `/crl/rN`: the CRL of the CA created by the N-th CA rotation (its leaves name this URL).
async fn crl_of_generation(
    State(state): State<AppState>,
    Path(generation): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let n = generation
        .strip_prefix('r')
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| ApiError::NotFound(format!("no CRL {generation:?}")))?;
    crl_reply(&state, n).await
}

async fn crl_reply(state: &AppState, generation: u32) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.unix();
    if state
        .keys
        .current()
        .ca_generation(generation, now)
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "no CRL for CA generation {generation} (unknown or retired)"
        )));
    }
    let crl = current_crl(state, generation)
        .await
        .map_err(|e| ApiError::Unavailable {
            what: "CRL",
            detail: e.to_string(),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pkix-crl".to_string()),
            (header::CACHE_CONTROL, "max-age=300, public".to_string()),
        ],
        crl.der,
    ))
}
