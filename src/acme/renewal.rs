//! ACME Renewal Information (RFC 9773): when a client should renew.
//!
//! The window is the last third of the certificate's life, from 2/3 to 5/6 of it (the
//! same 2/3 point the agent renews at). It moves to "now" (a window that has already
//! begun and ends within the minute, so clients renew at once) when the certificate was
//! revoked, when its integration may no longer receive credentials as it is (suspended,
//! decommissioned, review overdue: renewing will fail, and the client should say so
//! early), or when the CA key that signed it is no longer the one in force (a rotation).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use credmint_ledger::event::Event;
use serde_json::json;
use x509_parser::prelude::*;

use super::Problem;
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::registry::{CredentialKind, Registry};

/// Longest Retry-After (RFC 9773 §4.3 suggests clients poll about every 6 hours).
const MAX_RETRY_SECS: u64 = 6 * 3600;
const MIN_RETRY_SECS: u64 = 60;

/// Why a certificate should be renewed now, if it should.
fn renew_now(
    state: &AppState,
    aki: &[u8],
    row: &crate::registry::CertRow,
    now: u64,
) -> Result<Option<&'static str>, Problem> {
    if row.revoked_index.is_some() {
        return Ok(Some("revoked"));
    }
    let spec = Registry::open(&state.ledger)?.integration(&row.owner)?;
    if spec.is_none_or(|s| crate::policy::check_standing(&s, now).is_err()) {
        return Ok(Some("integration no longer issuable"));
    }
    if current_ca_ski(state).as_deref() != Some(aki) {
        return Ok(Some("CA key rotated"));
    }
    Ok(None)
}

fn current_ca_ski(state: &AppState) -> Option<Vec<u8>> {
    let active = state.keys.current();
    let (_, ca) = parse_x509_certificate(&active.ca.der).ok()?;
    let ski = ca
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        });
    ski
}

/// `GET /acme/renewal-info/<base64url(AKI keyIdentifier)>.<base64url(serial)>`.
pub async fn renewal_info(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match window(&state, &id) {
        Ok((start, end, retry)) => {
            let body =
                json!({ "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) } });
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            r
        }
        Err(p) => {
            let nonce = state.acme.nonces.issue(state.clock.unix());
            p.into_response_with(nonce, &state.acme.directory_url())
        }
    }
}

/// An ARI certificate id (RFC 9773 §4.1), `base64url(AKI keyIdentifier).base64url(serial)`,
/// as (AKI, serial bytes).
pub fn parse_cert_id(id: &str) -> Result<(Vec<u8>, Vec<u8>), Problem> {
    let (aki, serial) = id.split_once('.').ok_or_else(|| {
        Problem::malformed("a certificate id is base64url(AKI).base64url(serial)")
    })?;
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| Problem::malformed("the certificate id is not base64url"))
    };
    Ok((decode(aki)?, decode(serial)?))
}

fn window(state: &AppState, id: &str) -> Result<(u64, u64, u64), Problem> {
    let (aki, serial) = parse_cert_id(id)?;
    let row = Registry::open(&state.ledger)?
        .certificate(&serial)?
        .filter(|r| r.kind == CredentialKind::Workload)
        .ok_or_else(|| Problem::not_found("no certificate with this serial"))?;
    let not_before = match state.ledger.record(row.issued_index) {
        Ok(Some(rec)) => match rec.event {
            Event::CertificateIssued(c) => c.not_before,
            _ => return Err(Problem::server("issuance record of another kind")),
        },
        _ => return Err(Problem::server("issuance record unreadable")),
    };
    let now = state.clock.unix();
    let life = row.not_after.saturating_sub(not_before).max(1);
    let retry = (life / 10).clamp(MIN_RETRY_SECS, MAX_RETRY_SECS);
    if let Some(why) = renew_now(state, &aki, &row, now)? {
        tracing::debug!(serial = %hex::encode(&serial), why, "ARI: renew now");
        return Ok((now.saturating_sub(60), now + 60, MIN_RETRY_SECS));
    }
    Ok((not_before + life * 2 / 3, not_before + life * 5 / 6, retry))
}

/// The RFC 7638 canonical JWK of a DER SubjectPublicKeyInfo (EC P-256/P-384, Ed25519,
/// RSA), to compare a certificate's key with a JWS key.
pub fn spki_jwk(spki_der: &[u8]) -> Option<String> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let strip = |b: &[u8]| -> Vec<u8> {
        let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        b[start..].to_vec()
    };
    match spki.parsed().ok()? {
        x509_parser::public_key::PublicKey::EC(point) => {
            let p = point.data();
            let crv = match p.len() {
                65 => "P-256",
                97 => "P-384",
                _ => return None,
            };
            if p[0] != 4 {
                return None;
            }
            let n = (p.len() - 1) / 2;
            Some(format!(
                r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(&p[1..1 + n]),
                b64(&p[1 + n..])
            ))
        }
        x509_parser::public_key::PublicKey::RSA(rsa) => Some(format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64(&strip(rsa.exponent)),
            b64(&strip(rsa.modulus))
        )),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Some(format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64(&spki.subject_public_key.data)
        )),
        _ => None,
    }
}
