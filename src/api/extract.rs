//! Extractors: who is calling (from the mTLS client certificate or a bearer enrollment
//! token) and JSON bodies that fail with the API's error shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum_server::tls::TlsInfo;
use credmint_ledger::event::IntegrationSpec;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::api::workload::record_reuse;
use crate::app::AppState;
use crate::registry::{CertRow, CredentialKind, Registry};
use crate::sequencer::{Actor, Slack};
use credmint_ledger::event::ReuseKind;

/// A JSON body; malformed or oversized bodies become `ApiError`s.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Path parameters; a segment that does not decode or parse becomes an `ApiError` (400,
/// naming the segment) instead of axum's plain-text rejection.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// The raw body, cut at `server.max_body_bytes`; read failures become `ApiError`s (413 over
/// the limit, 400 naming the cause for a malformed chunked body).
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiBytes(Bytes::from_request(req, state).await?))
    }
}

/// The client certificate of this connection, with its projection row.
pub struct PeerCert {
    pub serial: Vec<u8>,
    pub row: CertRow,
}

fn peer_serial(parts: &Parts) -> Result<Vec<u8>, ApiError> {
    let info = parts
        .extensions
        .get::<Arc<TlsInfo>>()
        .ok_or_else(|| ApiError::Unauthenticated("client certificate required".into()))?;
    let der = info
        .peer_certificates
        .first()
        .ok_or_else(|| ApiError::Unauthenticated("client certificate required".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| ApiError::Unauthenticated("client certificate does not parse".into()))?;
    Ok(cert.raw_serial().to_vec())
}

/// Looks up the connection's certificate in the ledger projection. A certificate that
/// chains to the CA but was never committed to the ledger is refused.
pub fn peer_cert(parts: &Parts, state: &AppState) -> Result<PeerCert, ApiError> {
    let serial = peer_serial(parts)?;
    let row = Registry::open(&state.ledger)?
        .certificate(&serial)?
        .ok_or_else(|| {
            ApiError::Unauthenticated("client certificate unknown to the ledger".into())
        })?;
    Ok(PeerCert { serial, row })
}

/// An operator, authenticated by an operator certificate that is not revoked.
pub struct Operator {
    pub name: String,
    /// The presented certificate: the sequencer re-checks it at commit time.
    pub serial: Vec<u8>,
}

impl Operator {
    /// The sequencer actor for commands this operator causes.
    pub fn actor(&self) -> Actor {
        Actor::Operator {
            name: self.name.clone(),
            serial: self.serial.clone(),
        }
    }

    /// Ledger actor string (`operator:<name>`).
    pub fn actor_name(&self) -> String {
        self.actor().ledger_name()
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = match peer_cert(parts, state) {
            Err(_) if monitor_bearer(parts).is_some() => {
                return Err(ApiError::Forbidden(
                    "monitoring tokens are read-only: this route needs an operator certificate"
                        .into(),
                ))
            }
            peer => peer?,
        };
        if peer.row.kind != CredentialKind::Operator {
            tracing::warn!(owner = %peer.row.owner, "workload certificate presented on an admin route");
            return Err(ApiError::Forbidden(
                "admin routes require an operator certificate".into(),
            ));
        }
        if peer.row.revoked_index.is_some() {
            return Err(ApiError::Unauthenticated(
                "operator certificate revoked".into(),
            ));
        }
        // The TLS layer lets expired certificates through so routes can say why; an
        // expired operator certificate opens nothing.
        if peer.row.not_after < state.clock.unix() {
            return Err(ApiError::Unauthenticated(
                "operator certificate expired".into(),
            ));
        }
        Ok(Operator {
            name: peer.row.owner,
            serial: peer.serial,
        })
    }
}

/// The bearer token of the request when it is a monitoring token (by its prefix).
fn monitor_bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| {
            t.starts_with(super::monitors::MONITOR_TOKEN_PREFIX) && t.len() <= MAX_BEARER_LEN
        })
}

/// Who may read the inventory, the console and the metrics, and change nothing: an
/// operator (mTLS) or a live monitoring token (`Authorization: Bearer cmm_...`).
pub enum Reader {
    Operator(Operator),
    Monitor { name: String },
}

impl Reader {
    /// For the access log and the console header: `operator:<name>` or `monitor:<name>`.
    pub fn actor_name(&self) -> String {
        match self {
            Reader::Operator(o) => o.actor_name(),
            Reader::Monitor { name } => format!("monitor:{name}"),
        }
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let has_cert = parts
            .extensions
            .get::<Arc<TlsInfo>>()
            .is_some_and(|i| !i.peer_certificates.is_empty());
        let Some(token) = monitor_bearer(parts).filter(|_| !has_cert) else {
            return Ok(Reader::Operator(
                Operator::from_request_parts(parts, state).await?,
            ));
        };
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let row = Registry::open(&state.ledger)?.monitor(&hash)?;
        match row {
            Some(row) if row.live(state.clock.unix()) => Ok(Reader::Monitor { name: row.name }),
            Some(row) => {
                tracing::warn!(monitor = %row.name, "withdrawn or expired monitoring token presented");
                Err(ApiError::Unauthenticated(
                    "monitoring token withdrawn or expired".into(),
                ))
            }
            None => Err(ApiError::Unauthenticated("unknown monitoring token".into())),
        }
    }
}

/// A workload, authenticated by its current certificate: unrevoked and unexpired.
pub struct Workload {
    pub serial: Vec<u8>,
    pub integration: IntegrationSpec,
    slack: Slack,
}

impl Workload {
    /// The sequencer actor: this integration, by the certificate it presented.
    pub fn actor(&self) -> Actor {
        Actor::Workload {
            integration: self.integration.name.clone(),
            serial: self.serial.clone(),
            slack: self.slack,
        }
    }

    /// Checks `peer` against `slack` (what it may still do past revocation or expiry),
    /// recording the presentation of a dead certificate as reuse.
    async fn admit(peer: PeerCert, state: &AppState, slack: Slack) -> Result<Self, ApiError> {
        if let Some(dead) = Dead::judge(&peer.row, state.clock.unix(), slack) {
            let serial = hex::encode(&peer.serial);
            let (kind, detail) = match dead {
                Dead::Revoked(_) => (
                    ReuseKind::RevokedCertificate,
                    "revoked certificate presented",
                ),
                Dead::Expired => (
                    ReuseKind::ExpiredCertificate,
                    "expired certificate presented",
                ),
            };
            record_reuse(state, kind, &peer.row.owner, serial, detail).await;
            return Err(ApiError::Unauthenticated(dead.message()));
        }
        let integration = Registry::open(&state.ledger)?
            .integration(&peer.row.owner)?
            .ok_or_else(|| ApiError::Unauthenticated("integration unknown".into()))?;
        Ok(Workload {
            serial: peer.serial,
            integration,
            slack,
        })
    }
}

impl FromRequestParts<AppState> for Workload {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = WorkloadPeer::from_request_parts(parts, state).await?.0;
        Workload::admit(peer, state, Slack::default()).await
    }
}

/// Why a workload certificate may not act (beyond what its `Slack` forgives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// Revoked, with the RFC 5280 reason code.
    Revoked(u8),
    Expired,
}

impl Dead {
    pub fn judge(row: &CertRow, now: u64, slack: Slack) -> Option<Dead> {
        if row.revoked_index.is_some() && !slack.forgives_revocation(row.reason) {
            return Some(Dead::Revoked(row.reason));
        }
        (!slack.covers(row.not_after, now)).then_some(Dead::Expired)
    }

    /// The 401 message.
    pub fn message(self) -> String {
        match self {
            Dead::Revoked(reason) => format!(
                "certificate revoked ({})",
                crate::revoke::reason_name(reason)
            ),
            Dead::Expired => "certificate expired; enroll again".into(),
        }
    }
}

/// What `POST /v1/renew` lets through.
pub fn renewal_slack(state: &AppState) -> Slack {
    Slack {
        superseded: true,
        after_expiry_secs: state.config.ttl.renew_after_expiry_secs,
    }
}

/// A workload renewing: as [`Workload`], but its certificate may be revoked as
/// `superseded` or expired by at most `[ttl] renew_after_expiry_secs` (`Slack`).
pub struct Renewer(pub Workload);

impl FromRequestParts<AppState> for Renewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = WorkloadPeer::from_request_parts(parts, state).await?.0;
        Ok(Renewer(
            Workload::admit(peer, state, renewal_slack(state)).await?,
        ))
    }
}

/// Any workload certificate the ledger knows, revoked or expired too: for reading its
/// own standing (`GET /v1/self`), which authorises nothing.
pub struct WorkloadPeer(pub PeerCert);

impl FromRequestParts<AppState> for WorkloadPeer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = peer_cert(parts, state)?;
        if peer.row.kind != CredentialKind::Workload {
            return Err(ApiError::Forbidden(
                "workload routes require a workload certificate".into(),
            ));
        }
        Ok(WorkloadPeer(peer))
    }
}

/// Longest bearer token read; enrollment tokens are far shorter.
const MAX_BEARER_LEN: usize = 256;

/// `Authorization: Bearer <token>`; the token itself is never logged nor echoed.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let refused = |why: &str| Err(ApiError::Unauthenticated(why.to_string()));
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return refused("missing `Authorization: Bearer <enrollment token>`");
        };
        let Some(token) = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return refused(
                "malformed `Authorization` header: expected `Bearer <enrollment token>`",
            );
        };
        if token.is_empty() {
            return refused("empty bearer token: expected `Bearer <enrollment token>`");
        }
        if token.len() > MAX_BEARER_LEN {
            return Err(ApiError::Unauthenticated(format!(
                "bearer token too long ({} bytes; at most {MAX_BEARER_LEN}): not an enrollment token",
                token.len()
            )));
        }
        Ok(Bearer(token.to_string()))
    }
}
