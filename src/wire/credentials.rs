//! Credentials on the wire: enrollment tokens, certificate and token requests, revocation
//! and the public status answers with their ledger evidence.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Options of a new enrollment token (the body may also be empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentRequest {
    /// Token lifetime in seconds, 1 to 3600 (default 900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// A one-time enrollment token: shown once, only its hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentToken {
    pub integration: String,
    /// `cmt_` + 43 base64url characters; present it as `Authorization: Bearer` to
    /// `/v1/enroll`.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub ledger_index: Option<u64>,
}

/// A certificate request (enrollment or renewal).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertRequest {
    /// PEM PKCS#10 request; the subject and SANs are decided by the appliance.
    pub csr: String,
    /// Certificate lifetime in seconds (default and cap: the integration's max_ttl_secs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// A JWT request (workload mTLS); also the flags of `credmint token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The `aud` claim: the service the token is for.
    #[arg(long)]
    pub audience: String,
    /// Scope for the `scope` claim, one of the integration's; repeat for several.
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Token lifetime in seconds (default and cap: the integration's max_ttl_secs).
    #[arg(long = "ttl", value_name = "SECONDS")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// A minted JWT.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    /// Compact JWS, verifiable with `/.well-known/jwks.json`.
    pub token: String,
    pub jti: String,
    /// RFC 3339.
    pub expires_at: String,
    pub ledger_index: u64,
}

/// A workload revoking the certificate it presents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfRevoke {
    /// Hex serial; must be the presented certificate's (default: it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// RFC 5280 reason name (default cessationOfOperation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A revoked certificate (`serial`) or token (`jti`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Revoked {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Always `revoked`.
    pub status: StatusName,
    pub reason: String,
    /// The revocation's ledger record (the earlier one when it was already revoked).
    pub ledger_index: u64,
    pub already_revoked: bool,
}

/// What revoke-all did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationRevoked {
    pub integration: String,
    pub revoked_certificates: u64,
    pub revoked_tokens: u64,
    pub reason: String,
}

/// A credential's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    Good,
    Revoked,
    Expired,
    Unknown,
}

/// The ledger record that decided a status answer, with its RFC 9162 inclusion proof up
/// to a signed checkpoint (checked by the appliance before it answers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// Ledger index of the deciding record.
    pub index: u64,
    /// `true` while no checkpoint covers the record yet (the proof fields are absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_pending: Option<bool>,
    /// The record's canonical bytes, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_size: Option<u64>,
    /// Sibling hashes, base64, leaf to root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<Vec<String>>,
    /// The signed checkpoint (C2SP signed note) the proof leads to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

/// Status fields shared by certificates and tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Standing {
    pub status: StatusName,
    /// RFC 3339, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// RFC 5280 reason name, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ledger: Evidence,
}

/// `GET /v1/status/{serial}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateStatus {
    /// Hex serial.
    pub serial: String,
    /// Integration or operator name.
    pub owner: String,
    /// RFC 3339.
    pub not_after: String,
    #[serde(flatten)]
    pub standing: Standing,
}

/// `GET /v1/self`: one poll tells a workload's agent whether the certificate it presents
/// still stands and whether its integration may still receive credentials.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkloadSelf {
    pub integration: super::IntegrationView,
    pub certificate: PresentedCertificate,
}

/// The certificate a workload presented, as the ledger sees it now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresentedCertificate {
    /// Hex serial.
    pub serial: String,
    /// RFC 3339.
    pub not_after: String,
    /// `good`, `revoked` or `expired`.
    pub status: StatusName,
    /// RFC 5280 reason name, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether `POST /v1/renew` with this certificate would be let through now: it is
    /// good, revoked as `superseded`, or expired within `[ttl] renew_after_expiry_secs`,
    /// and the integration is active and not past review-by.
    pub renewable: bool,
    /// Why not, when `renewable` is false (the message `POST /v1/renew` would give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// `GET /v1/status/token/{jti}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenStatus {
    pub jti: String,
    pub integration: String,
    /// RFC 3339.
    pub expires_at: String,
    #[serde(flatten)]
    pub standing: Standing,
}
