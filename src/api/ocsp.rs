//! OCSP (RFC 6960, GET and POST) and the CRL (RFC 5280, DER) for relying systems that
//! already speak them. Both are answered from the status cache.
//!
//! HTTP caching (RFC 5019 6.2): only a successful, nonce-less response may be cached, and
//! only until its nextUpdate: `Cache-Control: max-age=<nextUpdate - now>, public,
//! no-transform, must-revalidate`, with `Last-Modified` (thisUpdate), `Expires`
//! (nextUpdate) and a strong `ETag` (SHA-256 of the DER); a GET with a matching
//! `If-None-Match` gets 304. Every non-successful response (`malformedRequest`,
//! `tryLater`, `unauthorized`, `internalError`) and every nonce response is
//! `Cache-Control: no-store`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::error::echo;
use super::extract::{ApiBytes, ApiPath};
use super::ApiError;
use crate::app::AppState;
use crate::status::cache::{answer, current_crl, OcspAnswer};
use crate::status::ocsp::ErrorStatus;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/crl", get(crl))
        .route("/crl/{generation}", get(crl_of_generation))
}

/// IMF-fixdate (RFC 9110 5.6.7) of a Unix time.
fn http_date(unix: u64) -> Option<HeaderValue> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).ok()?).ok()?;
    let wd = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        [usize::from(t.weekday().number_days_from_monday())];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::from(u8::from(t.month()) - 1)];
    let s = format!(
        "{wd}, {:02} {mon} {} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    );
    HeaderValue::from_str(&s).ok()
}

fn etag(der: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(der);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..16])))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// The response with its caching headers; `if_none_match` (GET only) may turn it into a 304.
fn ocsp_reply(
    state: &AppState,
    answer: OcspAnswer,
    if_none_match: Option<&HeaderValue>,
) -> Response {
    state.metrics.ocsp.response(answer.status);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    let now = state.clock.unix();
    match answer.freshness.filter(|f| f.next_update > now) {
        Some(f) => {
            let max_age = f.next_update - now;
            if let Ok(v) = HeaderValue::from_str(&format!(
                "max-age={max_age}, public, no-transform, must-revalidate"
            )) {
                headers.insert(header::CACHE_CONTROL, v);
            }
            let tag = etag(&answer.der);
            if let Some(v) = http_date(f.this_update) {
                headers.insert(header::LAST_MODIFIED, v);
            }
            if let Some(v) = http_date(f.next_update) {
                headers.insert(header::EXPIRES, v);
            }
            let not_modified = if_none_match
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(',')
                        .any(|t| t.trim() == "*" || t.trim().as_bytes() == tag.as_bytes())
                });
            headers.insert(header::ETAG, tag);
            if not_modified {
                headers.remove(header::CONTENT_TYPE);
                return (StatusCode::NOT_MODIFIED, headers).into_response();
            }
        }
        None => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    (headers, answer.der).into_response()
}

/// OCSP (RFC 6960) over POST: a DER OCSPRequest in, a signed OCSPResponse out.
#[utoipa::path(
    post, path = "/ocsp", tag = "status",
    request_body(content = Vec<u8>, content_type = "application/ocsp-request"),
    responses((status = 200, description = "OCSPResponse (also for malformedRequest, tryLater, unauthorized)", content_type = "application/ocsp-response", body = Vec<u8>))
)]
pub async fn ocsp_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> Response {
    let body = match body {
        Ok(ApiBytes(b)) => b,
        Err(e) => return e.into_response(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/ocsp-request") {
        let mut r = ocsp_reply(
            &state,
            OcspAnswer::error(ErrorStatus::MalformedRequest),
            None,
        );
        *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return r;
    }
    let a = answer(&state, &body).await;
    ocsp_reply(&state, a, None)
}

/// RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
/// OCSP over GET (RFC 6960 A.1): the base64 DER request in the path; cacheable (RFC 5019).
#[utoipa::path(
    get, path = "/ocsp/{request}", tag = "status",
    params(("request" = String, Path, description = "URL-encoded base64 of the DER OCSPRequest")),
    responses(
        (status = 200, description = "OCSPResponse with RFC 5019 caching headers", content_type = "application/ocsp-response", body = Vec<u8>),
        (status = 304, description = "`If-None-Match` matched the current answer"),
    )
)]
pub async fn ocsp_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(request): ApiPath<String>,
) -> Response {
    // axum has already percent-decoded the path; accept standard and URL-safe base64.
    let cleaned: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned));
    let a = match der {
        Ok(der) => answer(&state, &der).await,
        Err(_) => OcspAnswer::error(ErrorStatus::MalformedRequest),
    };
    ocsp_reply(&state, a, headers.get(header::IF_NONE_MATCH))
}

/// The CRL of the genesis CA (generation 0); its leaves name `/crl`.
/// The current CRL (RFC 5280), DER, of the CA generation in force.
#[utoipa::path(
    get, path = "/crl", tag = "status",
    responses((status = 200, description = "CRL, DER", content_type = "application/pkix-crl", body = Vec<u8>))
)]
pub async fn crl(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    crl_reply(&state, 0).await
}

/// `/crl/rN`: the CRL of the CA created by the N-th CA rotation (its leaves name this URL).
/// The CRL of one CA generation (older generations stay served during their overlap).
#[utoipa::path(
    get, path = "/crl/{generation}", tag = "status",
    params(("generation" = u32, Path, description = "CA generation", example = 1)),
    responses((status = 200, description = "CRL, DER", content_type = "application/pkix-crl", body = Vec<u8>))
)]
pub async fn crl_of_generation(
    State(state): State<AppState>,
    ApiPath(generation): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let n = generation
        .strip_prefix('r')
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| ApiError::NotFound(format!("no CRL {}", echo(&generation))))?;
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
