//! The appliance itself on the wire: errors, health, verification keys, key rotation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error answer (`src/api/error.rs`). 503 answers carry `Retry-After`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: not_found, bad_request, invalid_field, invalid_csr,
    /// unauthenticated, forbidden, denied, conflict, too_large, method_not_allowed,
    /// unavailable, internal.
    pub error: String,
    /// Human-readable; quotes at most 64 characters of any input.
    pub message: String,
    /// The offending field, for invalid_field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The HSM fault's kind, while the HSM is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm: Option<String>,
}

/// A body that carries only why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why (recorded in the ledger; for revocations an RFC 5280 reason name such as
    /// keyCompromise or cessationOfOperation).
    pub reason: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// ok or degraded (then the answer is 503).
    pub status: String,
    /// ok, or the kind of HSM fault.
    pub hsm: String,
    /// ok, or unavailable after a failed write (disk full).
    pub ledger: String,
    /// Records in the ledger.
    pub ledger_size: u64,
}

/// A public JSON Web Key (RFC 7517); never has private members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub kid: String,
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A key by its HSM label and fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyRef {
    pub label: String,
    /// Hex SHA-256 of the public key.
    pub fingerprint: String,
}

/// A key rotation, as recorded in the ledger.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rotated {
    /// ca, token or ledger.
    pub role: String,
    pub ledger_index: u64,
    pub reason: String,
    pub old_key: KeyRef,
    pub new_key: KeyRef,
    /// RFC 3339 end of the overlap, `null` where the old key retires at once.
    pub old_key_retires_at: Option<String>,
    /// CA rotations: the new generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_generation: Option<u64>,
    /// CA rotations: the new root, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// CA rotations: the new root signed by the old key, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_certificate: Option<String>,
    /// CA rotations: the new generation's CRL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_url: Option<String>,
    /// Token rotations: the new key's kid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Ledger rotations: size of the first checkpoint signed with the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
    /// Ledger rotations: the new verifier key (pin it in credmint-audit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_key: Option<String>,
}
