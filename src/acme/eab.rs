//! External Account Binding keys (RFC 8555 §7.3.4): how an operator lets an integration
//! open an ACME account.
//!
//! The key for id `kid` is HMAC-SHA256(token HMAC key, [`EAB_CONTEXT`] || kid), computed
//! inside the HSM (`hsm::mac`). Nothing secret is stored: the ledger records the kid,
//! its integration and expiry ([`AcmeEabCreated`]); the key is shown to the operator once
//! and derived again, inside the token, when an account presents it. A key binds one
//! account: the sequencer refuses a second use, and the auditor flags one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use credmint_ledger::event::AcmeEabCreated;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::admin::{optional_body, ttl_within};
use crate::api::extract::{ApiBytes, ApiPath, Operator};
use crate::api::{echo, ApiError};
use crate::app::AppState;
use crate::hsm::mac::{hmac_sha256, MAC_LEN};
use crate::hsm::{Hsm, HsmError};
use crate::registry::{check_identifier, Registry};
use crate::sequencer::{Command, Op};

/// Domain separation: the token's HMAC key derives nothing else with this prefix.
pub const EAB_CONTEXT: &[u8] = b"credmint acme eab v1\0";

/// Longest lifetime an operator may give an EAB key (30 days).
pub const MAX_EAB_TTL_SECS: u64 = 30 * 86_400;

/// Derives the HMAC key of `kid` inside the HSM. Blocking.
pub fn derive(hsm: &Hsm, label: &str, kid: &str) -> Result<Zeroizing<[u8; MAC_LEN]>, HsmError> {
    let mut msg = EAB_CONTEXT.to_vec();
    msg.extend_from_slice(kid.as_bytes());
    hmac_sha256(hsm, label, &msg).map(Zeroizing::new)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/integrations/{name}/acme-eab", post(create_eab))
}

/// Optional body of an EAB request.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EabRequest {
    /// Lifetime in seconds (default `[acme] eab_ttl_secs`, at most 30 days).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// An EAB key, shown once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EabKey {
    pub integration: String,
    /// The EAB key id (`--eab-kid` of certbot, `--kid` of lego).
    pub kid: String,
    /// The HMAC key, base64url without padding (`--eab-hmac-key`, `--hmac`). Shown once.
    pub hmac_key: String,
    pub expires_at: String,
    /// The ACME directory URL to give the client.
    pub directory: String,
    pub ledger_index: Option<u64>,
}

/// Creates an External Account Binding key for integration `name`.
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/acme-eab", tag = "integrations",
    security(("operator_mtls" = [])),
    params(crate::api::openapi::NamePath),
    request_body(content = EabRequest, description = "Optional; empty means `[acme] eab_ttl_secs`"),
    responses((status = 201, description = "EAB key created (shown once)", body = EabKey))
)]
pub async fn create_eab(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &name)?;
    let req: EabRequest = optional_body(&body)?;
    let ttl = ttl_within(
        req.ttl_secs,
        state.acme.config.eab_ttl_secs,
        MAX_EAB_TTL_SECS,
    )?;
    let spec = Registry::open(&state.ledger)?
        .integration(&name)?
        .ok_or_else(|| ApiError::NotFound(format!("no integration named {}", echo(&name))))?;
    crate::policy::check_standing(&spec, state.clock.unix())?;
    let mut raw = [0u8; 18];
    rand::fill(&mut raw);
    let kid = format!("eab_{}", URL_SAFE_NO_PAD.encode(raw));
    let (hsm, label, k) = (
        state.hsm.clone(),
        state.acme.config.eab_key_label.clone(),
        kid.clone(),
    );
    let key = tokio::task::spawn_blocking(move || derive(&hsm, &label, &k))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let expires_at = state.clock.unix() + ttl;
    let created = Op::CreateAcmeEab(AcmeEabCreated {
        integration: name.clone(),
        kid: kid.clone(),
        expires_at,
    });
    let receipt = state
        .sequencer
        .submit(Command::new(operator.actor(), created))
        .await?;
    tracing::info!(integration = %name, operator = %operator.name, %kid, "ACME EAB key created");
    Ok((
        StatusCode::CREATED,
        Json(EabKey {
            integration: name,
            kid,
            hmac_key: URL_SAFE_NO_PAD.encode(key.as_slice()),
            expires_at: crate::clock::rfc3339(expires_at),
            directory: state.acme.directory_url(),
            ledger_index: receipt.first_index(),
        }),
    ))
}
