//! Projection tables, listed once.

use redb::{MultimapTableDefinition, TableDefinition};

/// A certificate row: (owner: integration or operator name, kind, not_after, issued
/// index, revoked index or 0, revocation reason).
pub type CertValue<'a> = (&'a str, u8, u64, u64, u64, u8);
/// A token row: (integration, expires_at, issued index, revoked index or 0, reason).
pub type TokenValue<'a> = (&'a str, u64, u64, u64, u8);

/// name -> IntegrationSpec canonical bytes (ledger codec).
pub const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("proj_integrations");
/// SHA-256(enrollment token) -> (integration, expires_at, used_at or 0).
pub const ENROLLMENTS: TableDefinition<&[u8; 32], (&str, u64, u64)> =
    TableDefinition::new("proj_enrollments");
/// serial -> certificate row.
pub const CERTIFICATES: TableDefinition<&[u8], CertValue> =
    TableDefinition::new("proj_certificates");
/// jti -> token row.
pub const TOKENS: TableDefinition<&str, TokenValue> = TableDefinition::new("proj_tokens");
/// Revoked certificates for the CRL: serial -> (revoked_at unix, reason, not_after).
pub const REVOKED: TableDefinition<&[u8], (u64, u8, u64)> = TableDefinition::new("proj_revoked");
/// integration -> serials of its certificates (for revoke-all, inventory).
pub const INTEGRATION_CERTS: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("proj_integration_certs");
/// integration -> jtis of its tokens.
pub const INTEGRATION_TOKENS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("proj_integration_tokens");
/// integration -> (last issuance unix seconds, issued count, the issuance before the last
/// or 0).
pub const ACTIVITY: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("proj_activity");
/// integration -> (registered at, last governance change at), unix seconds.
pub const INTEGRATION_META: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("proj_integration_meta");
/// A pending change request: (integration, requester actor, reason, SHA-256 of the spec it
/// was based on, proposed spec bytes, requested at unix seconds).
pub type PendingValue<'a> = (&'a str, &'a str, &'a str, &'a [u8], &'a [u8], u64);
/// Ledger index of a ChangeRequested still awaiting approval -> its request.
pub const PENDING_CHANGES: TableDefinition<u64, PendingValue> =
    TableDefinition::new("proj_pending_changes");
/// Ledger index of a ChangeRequested no longer pending -> (1 approved or 2 superseded by a
/// later change of the integration, index of the record that closed it).
pub const CLOSED_CHANGES: TableDefinition<u64, (u8, u64)> =
    TableDefinition::new("proj_closed_changes");
/// "version" and "size": projection layout version and the ledger size it reflects.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("proj_meta");
/// operator name -> ledger index of its first certificate.
pub const OPERATORS: TableDefinition<&str, u64> = TableDefinition::new("proj_operators");

/// A pending operator request (ledger index of its `OperatorRequested`) -> (name,
/// requester operator name, requested key SPKI DER, approval_ref, requested at).
pub type OperatorRequestValue<'a> = (&'a str, &'a str, &'a [u8], &'a str, u64);
pub const OPERATOR_REQUESTS: TableDefinition<u64, OperatorRequestValue> =
    TableDefinition::new("proj_operator_requests");
/// Operator name -> (requested_by, approved_by) for operators minted after init (the
/// input of `credmint_ledger::governance::may_approve`).
pub const OPERATOR_LINEAGE: TableDefinition<&str, (&str, &str)> =
    TableDefinition::new("proj_operator_lineage");

/// Live credentials, keyed so that one range scan yields exactly an integration's
/// unexpired, unrevoked credentials: [`super::live::key`] (integration, 0x00, not_after
/// big-endian, kind, id). Revocation removes the row; expired rows fall below the scan's
/// lower bound and are never read again.
pub const LIVE: TableDefinition<&[u8], ()> = TableDefinition::new("proj_live");

/// SHA-256(monitoring token) -> (name, expires_at, withdrawn: 1 or 0).
pub const MONITORS: TableDefinition<&[u8; 32], (&str, u64, u8)> =
    TableDefinition::new("proj_monitors");
/// Monitoring token name -> SHA-256 of its live (not withdrawn) grant.
pub const MONITOR_NAMES: TableDefinition<&str, &[u8; 32]> =
    TableDefinition::new("proj_monitor_names");

/// ACME EAB key id -> (integration, expires_at, ledger index of the account it bound or 0).
pub const ACME_EAB: TableDefinition<&str, (&str, u64, u64)> = TableDefinition::new("proj_acme_eab");
/// ACME account id -> (integration, current RFC 7638 canonical JWK, deactivated 1 or 0, EAB
/// key id, ledger index of its creation).
pub type AcmeAccountValue<'a> = (&'a str, &'a [u8], u8, &'a str, u64);
pub const ACME_ACCOUNTS: TableDefinition<&str, AcmeAccountValue> =
    TableDefinition::new("proj_acme_accounts");
/// JWK thumbprint of every key an ACME account has had (current and former) -> account id:
/// newAccount finds an existing account by its key, and no key serves two accounts.
pub const ACME_KEYS: TableDefinition<&str, &str> = TableDefinition::new("proj_acme_keys");

/// Bump when the projection layout changes: a mismatch triggers a rebuild from the ledger.
pub const PROJECTION_VERSION: u64 = 7;
