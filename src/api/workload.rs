//! Workload routes: enrollment with a one-time token, renewal and tokens over mTLS.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use credmint_ledger::event::{ReuseDetected, ReuseKind};
use sha2::{Digest, Sha256};

use super::extract::{renewal_slack, ApiJson, Bearer, Dead, Renewer, Workload, WorkloadPeer};
use super::{views, ApiError};
use crate::app::AppState;
use crate::issuance::IssueError;
use crate::issuance::{issue_certificate, issue_token, IssuedCert};
use crate::issue::parse_csr;
use crate::policy::{decide_certificate, decide_token};
use crate::registry::Registry;
use crate::sequencer::{Actor, Command, Op, Refusal, SequenceError};
use crate::signals::current_peer;
use crate::wire::{
    CertRequest, ErrorBody, IssuedToken, PresentedCertificate, StatusName, TokenRequest,
    WorkloadSelf,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/enroll", post(enroll))
        .route("/v1/renew", post(renew))
        .route("/v1/tokens", post(token))
        .route("/v1/self", get(whoami))
}

/// The certificate chain, leaf first; the headers name the new certificate.
#[derive(utoipa::ToResponse)]
#[response(
    content_type = "application/pem-certificate-chain",
    headers(
        ("x-credmint-serial" = String, description = "Hex serial"),
        ("x-credmint-ledger-index" = u64, description = "Ledger record of the issuance"),
    )
)]
pub struct CertChain(#[allow(dead_code)] String);

fn cert_response(cert: IssuedCert) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pem-certificate-chain"),
    );
    if let Ok(v) = HeaderValue::from_str(&hex::encode(&cert.serial)) {
        headers.insert("x-credmint-serial", v);
    }
    headers.insert(
        "x-credmint-ledger-index",
        HeaderValue::from(cert.ledger_index),
    );
    (StatusCode::CREATED, headers, cert.chain_pem)
}

/// Writes a rate-limited `reuse-detected` event; failures to record are logged, never
/// turned into a different answer for the caller.
pub async fn record_reuse(
    state: &AppState,
    kind: ReuseKind,
    integration: &str,
    credential: String,
    detail: &str,
) {
    let Some(count) = state.signals.reuse(&credential, state.clock.unix()) else {
        return;
    };
    tracing::warn!(kind = ?kind, %integration, %credential, count, "reuse detected");
    let reuse = Op::Reuse(ReuseDetected {
        kind,
        integration: integration.to_string(),
        credential,
        count,
        detail: detail.to_string(),
    });
    let command = Command::new(Actor::System("signals"), reuse);
    if let Err(e) = state.sequencer.submit(command).await {
        state.signals.write_failed();
        tracing::error!(error = %e, "could not record reuse signal");
    }
}

/// A workload's first certificate, for a one-time enrollment token.
#[utoipa::path(
    post, path = "/v1/enroll", tag = "workloads",
    security(("enrollment_token" = [])),
    request_body(content = CertRequest, example = json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIH...\n-----END CERTIFICATE REQUEST-----\n", "ttl_secs": 600})),
    responses(
        (status = 201, response = CertChain),
        (status = 401, description = "Token invalid, expired or already used", body = ErrorBody),
        (status = 403, description = "Policy denied (suspended, TTL above the cap, ...)", body = ErrorBody),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    ApiJson(req): ApiJson<CertRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let token_hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    drop(token);
    let registry = Registry::open(&state.ledger)?;
    let enrollment = registry
        .enrollment(&token_hash)?
        .ok_or_else(|| ApiError::Unauthenticated("invalid enrollment token".into()))?;
    let now = state.clock.unix();
    if enrollment.used_at.is_some() {
        record_reuse(
            &state,
            ReuseKind::EnrollmentToken,
            &enrollment.integration,
            hex::encode(token_hash),
            "enrollment token used again",
        )
        .await;
        return Err(ApiError::Unauthenticated(
            "enrollment token already used".into(),
        ));
    }
    if now > enrollment.expires_at {
        return Err(ApiError::Unauthenticated("enrollment token expired".into()));
    }
    let spec = registry
        .integration(&enrollment.integration)?
        .ok_or_else(|| ApiError::Internal("enrollment for unknown integration".into()))?;
    drop(registry);
    let csr = parse_csr(req.csr.as_bytes())?;
    let grant = decide_certificate(
        &spec,
        &csr,
        req.ttl_secs,
        &state.config.ttl,
        &state.config.identity.trust_domain,
        now,
    )?;
    let integration = spec.name.clone();
    let result = issue_certificate(
        &state.issuer(),
        &grant,
        &csr,
        Actor::Enrollment {
            integration: integration.clone(),
        },
        Some(token_hash),
        current_peer(),
    )
    .await;
    if let Err(IssueError::Sequence(SequenceError::Refused(Refusal::EnrollmentSpent))) = &result {
        // Lost a race with another use of the same token: that is reuse too.
        record_reuse(
            &state,
            ReuseKind::EnrollmentToken,
            &integration,
            hex::encode(token_hash),
            "enrollment token used concurrently",
        )
        .await;
    }
    Ok(cert_response(result?))
}

/// A fresh certificate for the workload presenting its current one (mTLS). The current one
/// may also be revoked as `superseded` (the operator asks for a new certificate; nothing
/// is suspected of the key) or expired by at most `[ttl] renew_after_expiry_secs`.
#[utoipa::path(
    post, path = "/v1/renew", tag = "workloads",
    security(("workload_mtls" = [])),
    request_body(content = CertRequest, example = json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIH...\n-----END CERTIFICATE REQUEST-----\n", "ttl_secs": 600})),
    responses(
        (status = 201, response = CertChain),
        (status = 403, description = "Policy denied", body = ErrorBody),
    )
)]
pub async fn renew(
    State(state): State<AppState>,
    Renewer(workload): Renewer,
    ApiJson(req): ApiJson<CertRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let csr = parse_csr(req.csr.as_bytes())?;
    let grant = decide_certificate(
        &workload.integration,
        &csr,
        req.ttl_secs,
        &state.config.ttl,
        &state.config.identity.trust_domain,
        state.clock.unix(),
    )?;
    let cert = issue_certificate(
        &state.issuer(),
        &grant,
        &csr,
        workload.actor(),
        None,
        current_peer(),
    )
    .await?;
    Ok(cert_response(cert))
}

/// A JWT for the workload presenting its certificate (mTLS).
#[utoipa::path(
    post, path = "/v1/tokens", operation_id = "mint_token", tag = "workloads",
    security(("workload_mtls" = [])),
    request_body(content = TokenRequest, example = json!({
        "audience": "billing", "scopes": ["deploy:read"], "ttl_secs": 300
    })),
    responses(
        (status = 201, description = "Minted", body = IssuedToken, example = json!({
            "token": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9.eyJ...", "jti": "01J9Z8W6QK0H6M1T2V3X4Y5Z6A",
            "expires_at": "2026-12-03T07:05:00Z", "ledger_index": 12
        })),
        (status = 403, description = "Scope or audience not allowed, TTL above the cap", body = ErrorBody),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    workload: Workload,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let grant = decide_token(
        &workload.integration,
        &req.audience,
        &req.scopes,
        req.ttl_secs,
        &state.config.ttl,
        &state.config.identity.trust_domain,
        state.clock.unix(),
    )?;
    let issued = issue_token(&state.issuer(), &grant, workload.actor(), current_peer()).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: issued.jwt,
            jti: issued.jti,
            expires_at: views::rfc3339(issued.expires_at),
            ledger_index: issued.ledger_index,
        }),
    ))
}

/// The presenting workload's own standing, for its agent's poll: the integration (status,
/// policy) and the presented certificate, revoked or expired ones too. Authorises nothing
/// and records nothing: an agent asks this every few seconds.
#[utoipa::path(
    get, path = "/v1/self", tag = "workloads",
    security(("workload_mtls" = [])),
    responses(
        (status = 200, description = "Integration and presented certificate", body = WorkloadSelf),
        (status = 401, description = "No client certificate, or one the ledger does not know", body = ErrorBody),
    )
)]
pub async fn whoami(
    State(state): State<AppState>,
    WorkloadPeer(peer): WorkloadPeer,
) -> Result<Json<WorkloadSelf>, ApiError> {
    let now = state.clock.unix();
    let spec = crate::api::lifecycle::load(&state, &peer.row.owner)?;
    let status = if peer.row.revoked_index.is_some() {
        StatusName::Revoked
    } else if peer.row.not_after < now {
        StatusName::Expired
    } else {
        StatusName::Good
    };
    let refusal = match Dead::judge(&peer.row, now, renewal_slack(&state)) {
        Some(dead) => Some(dead.message()),
        None => crate::policy::check_standing(&spec, now)
            .err()
            .map(|d| d.to_string()),
    };
    Ok(Json(WorkloadSelf {
        integration: views::integration_of(&state, &spec),
        certificate: PresentedCertificate {
            serial: hex::encode(&peer.serial),
            not_after: views::rfc3339(peer.row.not_after),
            status,
            reason: peer
                .row
                .revoked_index
                .map(|_| crate::revoke::reason_name(peer.row.reason).to_string()),
            renewable: refusal.is_none(),
            refusal,
        },
    }))
}
