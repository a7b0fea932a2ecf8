//! Governance on the wire: changes (also the flags of `credmint integration change`),
//! change requests and their approval, recertification, decommissioning.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::integration::{Class, IntegrationView};

/// A proposed change: only the fields to change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// New scope list, replacing the old; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// New longest credential lifetime, in seconds.
    #[arg(long = "max-ttl", value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ttl_secs: Option<u64>,
    /// New privilege class: routine or privileged.
    #[arg(long = "class", value_name = "CLASS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Class>)]
    pub privilege_class: Option<String>,
    /// New DNS name list, replacing the old; repeat for several.
    #[arg(long = "dns", value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<String>>,
    /// Allow (true) or forbid (false) serverAuth in its certificates.
    #[arg(long = "server-auth", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_server_auth: Option<bool>,
    /// New audience list, replacing the old; repeat for several. `[]` (CLI
    /// `--no-audiences`) allows no token.
    #[arg(
        long = "audience",
        value_name = "AUDIENCE",
        conflicts_with = "any_audience"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// `true`: lift the audience list, so tokens may name any audience (a widening, so it
    /// needs a second operator). `false` is refused: name the list instead.
    #[arg(long = "any-audience", num_args = 0, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub any_audience: Option<bool>,
    /// Pre-authorize its DNS names for ACME (true: an increase, needs a second operator)
    /// or require challenges again (false).
    #[arg(long = "acme-preauthorized", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_preauthorized: Option<bool>,
    /// New business owner.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_owner: Option<String>,
    /// New technical owner.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technical_owner: Option<String>,
    /// New purpose (always needs a second operator).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Ticket under which the new state is approved; becomes the integration's
    /// approval_ref (default: unchanged).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_ref: Option<String>,
    /// Why (recorded in the ledger as the change's reference or the request's reason).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub reason: Option<String>,
}

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Pending,
    Approved,
    Superseded,
}

/// A change that applied at once (narrowing and/or owner change).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeApplied {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// Always `applied`.
    pub status_of_change: String,
    /// Which ledger events were written: narrowed, owner_changed.
    pub applied: Vec<String>,
    /// Names of the fields that changed.
    pub changes: Vec<String>,
    pub ledger_index: Option<u64>,
}

/// A change that increases authority: recorded as a request a second operator approves.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequested {
    pub status: ChangeStatus,
    /// Ledger index of the request: approve it at `/v1/admin/changes/{request_index}/approve`.
    pub request_index: u64,
    pub integration: String,
    /// Actor that asked, e.g. `operator:admin`.
    pub requested_by: String,
    pub needs_approval_because: String,
    pub changes: Vec<String>,
    pub proposed: IntegrationView,
    pub ledger_index: u64,
}

/// A change that asked for the state the integration already had.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeUnchanged {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// Always `true`.
    pub unchanged: bool,
}

/// Answer of `POST /v1/admin/integrations/{name}/changes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChangeOutcome {
    Applied(ChangeApplied),
    Requested(ChangeRequested),
    Unchanged(ChangeUnchanged),
}

/// A change request awaiting a second operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingChange {
    pub request_index: u64,
    pub integration: String,
    pub requested_by: String,
    pub reason: String,
    /// RFC 3339.
    pub requested_at: String,
    /// Fields the request would change, against the current state.
    pub changes: Vec<String>,
    pub proposed: IntegrationView,
    pub status: ChangeStatus,
}

/// A change request that is no longer pending.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosedChange {
    pub request_index: u64,
    pub status: ChangeStatus,
    /// Ledger record that approved or superseded it.
    pub closed_by_ledger_index: u64,
}

/// Answer of `GET /v1/admin/changes/{index}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChangeState {
    Pending(Box<PendingChange>),
    Closed(ClosedChange),
}

/// `GET /v1/admin/changes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeList {
    pub changes: Vec<PendingChange>,
}

/// Approval of a change request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// Ticket under which the second operator approves (required).
    #[schema(value_type = String, required = true)]
    pub approval_ref: Option<String>,
}

/// A change request applied by a second operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeApproved {
    #[serde(flatten)]
    pub integration: IntegrationView,
    pub request_index: u64,
    pub approved_by: String,
    pub requested_by: String,
    pub ledger_index: Option<u64>,
}

/// Recertification: the owner confirms the integration is still needed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecertifyBody {
    /// New review-by: YYYY-MM-DD or RFC 3339, at most the class limit from now.
    #[schema(value_type = String, required = true)]
    pub review_by: Option<String>,
    /// Ticket or note recording the owner's confirmation.
    #[schema(value_type = String, required = true)]
    pub reference: Option<String>,
}

/// Decommissioning: why the integration is retired.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecommissionBody {
    #[schema(value_type = String, required = true)]
    pub reason: Option<String>,
}

/// A retired integration and what its retirement revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Decommissioned {
    #[serde(flatten)]
    pub integration: IntegrationView,
    pub revoked_certificates: u64,
    pub revoked_tokens: u64,
    pub ledger_index: Option<u64>,
}
