//! Projection tables, listed once.

use redb::TableDefinition;

/// name -> IntegrationSpec canonical bytes (ledger codec).
pub const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("proj_integrations");
/// SHA-256(enrollment token) -> (integration, expires_at, used_at or 0).
pub const ENROLLMENTS: TableDefinition<&[u8; 32], (&str, u64, u64)> =
    TableDefinition::new("proj_enrollments");
/// serial -> (owner: integration or operator name, kind, not_after, issued index,
/// revoked index or 0, revocation reason).
pub const CERTIFICATES: TableDefinition<&[u8], (&str, u8, u64, u64, u64, u8)> =
    TableDefinition::new("proj_certificates");
/// jti -> (integration, expires_at, issued index, revoked index or 0, reason).
pub const TOKENS: TableDefinition<&str, (&str, u64, u64, u64, u8)> =
    TableDefinition::new("proj_tokens");
/// integration -> (last issuance unix seconds, issued count).
pub const ACTIVITY: TableDefinition<&str, (u64, u64)> = TableDefinition::new("proj_activity");
/// "version" and "size": projection layout version and the ledger size it reflects.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("proj_meta");

/// Bump when the projection layout changes: a mismatch triggers a rebuild from the ledger.
pub const PROJECTION_VERSION: u64 = 1;
