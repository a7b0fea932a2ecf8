//! Read-only monitoring tokens (`/v1/admin/monitors`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new monitoring token for one scraper.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorGrant {
    /// Label of the scraper (e.g. `prometheus`); at most one live token per name.
    pub name: String,
    /// Token lifetime in days, 1 to 397 (default 90).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_days: Option<u64>,
}

/// A granted monitoring token: shown once, only its SHA-256 is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorToken {
    pub name: String,
    /// `cmm_` + 43 base64url characters; present it as `Authorization: Bearer`.
    pub token: String,
    /// Hex SHA-256 of the token: what the ledger and the list show.
    pub token_sha256: String,
    /// RFC 3339.
    pub expires_at: String,
    pub ledger_index: Option<u64>,
}

/// A monitoring grant that is not withdrawn.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorView {
    pub name: String,
    pub token_sha256: String,
    /// RFC 3339.
    pub expires_at: String,
    /// False once expired.
    pub live: bool,
}

/// Every monitoring grant not withdrawn.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorList {
    pub monitors: Vec<MonitorView>,
}

/// A withdrawn monitoring grant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorWithdrawn {
    pub name: String,
    pub withdrawn: bool,
    pub ledger_index: Option<u64>,
}
