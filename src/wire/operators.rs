//! Operators on the wire: requests for a new operator (dual control) and their approval.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new operator (or a renewal of the caller's own certificate, for its own name).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddOperator {
    /// Operator name (a-z, 0-9, '-').
    pub name: String,
    /// PEM PKCS#10 request; the new operator keeps the private key.
    pub csr: String,
    /// Ticket under which the operator is let in.
    pub approval_ref: String,
}

/// Approval of an operator request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveOperator {
    /// Ticket under which the approver lets the new operator in (default: the request's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_ref: Option<String>,
}

/// An operator request recorded, awaiting a second, independent operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorPending {
    /// Always `pending`.
    pub status: String,
    pub request_index: u64,
    pub name: String,
    pub requested_by: String,
    /// Path at which a second operator approves it.
    pub approve_at: String,
    pub ledger_index: u64,
}

/// An operator request awaiting approval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorRequestView {
    pub request_index: u64,
    pub name: String,
    pub requested_by: String,
    pub approval_ref: String,
    /// RFC 3339.
    pub requested_at: String,
    /// Hex SHA-256 of the requested key's SPKI: compare it with the new operator's.
    pub key_fingerprint: String,
}

/// `GET /v1/admin/operators/requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorRequests {
    pub requests: Vec<OperatorRequestView>,
}
