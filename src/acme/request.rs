//! The checks every ACME POST passes before a handler sees it (RFC 8555 §6.2-§6.5):
//! content type, JWS structure, a nonce this server issued and nobody used, the exact URL
//! of the request, and a signature by the account's key (`kid`) or by the key the request
//! carries (`jwk`, only where the protocol allows it).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::jws::{AccountKey, Jws, JwsError};
use super::Problem;
use crate::app::AppState;
use crate::registry::{AcmeAccountRow, Registry};

impl From<JwsError> for Problem {
    fn from(e: JwsError) -> Problem {
        match e {
            JwsError::Malformed(_) => Problem::malformed(e.to_string()),
            JwsError::BadAlgorithm(_) => {
                let mut p = Problem::new(
                    "badSignatureAlgorithm",
                    StatusCode::BAD_REQUEST,
                    e.to_string(),
                );
                // RFC 8555 §6.2: the problem lists the algorithms the server accepts.
                p.algorithms = Some(&super::jws::ALGORITHMS);
                p
            }
            JwsError::BadSignature => Problem::unauthorized(e.to_string()),
            JwsError::BadKey(_) => {
                Problem::new("badPublicKey", StatusCode::BAD_REQUEST, e.to_string())
            }
        }
    }
}

/// A request signed by an existing, valid account.
pub struct AccountRequest {
    pub jws: Jws,
    pub account: AcmeAccountRow,
}

impl AccountRequest {
    /// The sequencer actor of this request: the account, and the key it signed with, so a
    /// request signed just before a key rollover commits nothing after it.
    pub fn actor(&self) -> crate::sequencer::Actor {
        crate::sequencer::Actor::Acme {
            account: self.account.id.clone(),
            key: credmint_ledger::event::account_id(&self.account.jwk),
        }
    }
}

/// The parts of an ACME POST every check needs. Extracted last (it takes the body); a
/// body that cannot be read is answered as an ACME problem, with a nonce.
pub struct Posted {
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| {
                let p = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::malformed("request body too large").with_status(e.status())
                } else {
                    Problem::malformed(format!("request body unreadable: {}", e.body_text()))
                };
                super::answer(state, Err(p))
            })?;
        Ok(Posted { headers, uri, body })
    }
}

/// Content type, structure, nonce and URL: everything but the signature.
pub fn envelope(state: &AppState, p: &Posted) -> Result<Jws, Problem> {
    let (headers, uri, body) = (&p.headers, &p.uri, &p.body);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/jose+json") {
        return Err(
            Problem::malformed("ACME requests are application/jose+json (RFC 8555 §6.2)")
                .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        );
    }
    let jws = Jws::parse(body)?;
    let nonce = jws.header.nonce.as_deref().unwrap_or("");
    if !state.acme.nonces.consume(nonce, state.clock.unix()) {
        return Err(Problem::bad_nonce());
    }
    let expected = format!("{}{}", state.public_url.trim_end_matches('/'), uri.path());
    if jws.header.url != expected {
        return Err(Problem::unauthorized(format!(
            "the JWS url {} is not this request's URL {expected:?}",
            crate::api::echo(&jws.header.url)
        )));
    }
    Ok(jws)
}

/// A request signed by the account its `kid` names.
pub fn by_account(state: &AppState, p: &Posted) -> Result<AccountRequest, Problem> {
    let jws = envelope(state, p)?;
    let account = account_of(state, &jws)?;
    Ok(AccountRequest { jws, account })
}

/// The account a `kid`-signed request comes from, once its signature verified.
pub fn account_of(state: &AppState, jws: &Jws) -> Result<AcmeAccountRow, Problem> {
    let Some(kid) = jws.header.kid.as_deref() else {
        return Err(Problem::malformed(
            "this request must be signed by an account (\"kid\"), not a bare key (\"jwk\")",
        ));
    };
    let prefix = state.acme.url("/acct/");
    let id = kid.strip_prefix(prefix.as_str()).ok_or_else(|| {
        Problem::account_does_not_exist("kid is not an account URL of this server")
    })?;
    let row = Registry::open(&state.ledger)
        .map_err(|e| Problem::server(e.to_string()))?
        .acme_account(id)
        .map_err(|e| Problem::server(e.to_string()))?
        .ok_or_else(|| Problem::account_does_not_exist("no such account"))?;
    let key = AccountKey::from_canonical(&row.jwk)
        .map_err(|e| Problem::server(format!("stored account key unreadable: {e}")))?;
    jws.verify(&key).map_err(|e| match e {
        JwsError::BadSignature => {
            Problem::unauthorized("the JWS signature does not verify with this account's key")
        }
        other => other.into(),
    })?;
    if row.deactivated {
        return Err(Problem::unauthorized("this account is deactivated"));
    }
    Ok(row)
}

/// A request signed by the key it carries (`jwk`): newAccount, revocation by certificate
/// key. Returns the key.
pub fn by_key(jws: &Jws) -> Result<AccountKey, Problem> {
    let jwk = jws
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| Problem::malformed("this request must carry its key as \"jwk\""))?;
    let key = AccountKey::from_jwk(jwk)?;
    jws.verify(&key)?;
    Ok(key)
}
