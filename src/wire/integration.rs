//! Integrations on the wire: the registration an operator sends (also the flags of
//! `credmint integration register`), and the integration and inventory views.

use credmint_ledger::event::{IntegrationSpec, IntegrationStatus, PrivilegeClass};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;

/// How much authority an integration holds; privileged ones get shorter caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Routine,
    Privileged,
}

impl From<PrivilegeClass> for Class {
    fn from(c: PrivilegeClass) -> Class {
        match c {
            PrivilegeClass::Routine => Class::Routine,
            PrivilegeClass::Privileged => Class::Privileged,
        }
    }
}

/// Whether an integration may receive credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Active,
    Suspended,
    Decommissioned,
}

impl From<IntegrationStatus> for Lifecycle {
    fn from(s: IntegrationStatus) -> Lifecycle {
        match s {
            IntegrationStatus::Active => Lifecycle::Active,
            IntegrationStatus::Suspended => Lifecycle::Suspended,
            IntegrationStatus::Decommissioned => Lifecycle::Decommissioned,
        }
    }
}

/// A registration as sent by an operator. Every field but the last two is required; the
/// server names the first missing or invalid one (`invalid_field`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Integration name: 1-63 characters of a-z, 0-9 and '-' (the SPIFFE ID's last segment).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub name: Option<String>,
    /// Team or person accountable for the integration (at most 255 bytes).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub business_owner: Option<String>,
    /// Person who runs it day to day (at most 255 bytes).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub technical_owner: Option<String>,
    /// What the integration is for, in a sentence (at most 255 bytes).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub purpose: Option<String>,
    /// Environment, e.g. prod (same alphabet as the name; the SPIFFE ID's first segment).
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub environment: Option<String>,
    /// Scope the integration may request in tokens; repeat for several (1 to 64).
    #[arg(long = "scope", required = true, value_name = "SCOPE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<String>, required = true)]
    pub scopes: Option<Vec<String>>,
    /// Privilege class: routine or privileged (privileged has shorter TTL and review caps).
    #[arg(long = "class", default_value = "routine", value_name = "CLASS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Class, required = true)]
    pub privilege_class: Option<String>,
    /// Longest lifetime of any credential issued to it, in seconds (at most the class cap).
    #[arg(long = "max-ttl", required = true, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64, required = true, minimum = 1)]
    pub max_ttl_secs: Option<u64>,
    /// When the owner must recertify it: YYYY-MM-DD (end of that day, UTC) or RFC 3339;
    /// at most 365 days (routine) or 90 days (privileged) ahead by default.
    #[arg(long, required = true, value_name = "DATE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub review_by: Option<String>,
    /// Change ticket under which the integration was approved.
    #[arg(long, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = true)]
    pub approval_ref: Option<String>,
    /// Let its certificates carry serverAuth (TLS server) besides clientAuth.
    #[arg(long = "server-auth")]
    #[serde(default)]
    pub allow_server_auth: bool,
    /// DNS name its certificates may carry (`*.` allowed); repeat for several.
    #[arg(long = "dns", value_name = "NAME")]
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// JWT audience its tokens may name; repeat for several (at most 64, each 1-255 bytes).
    /// Absent: any audience (the behaviour of integrations registered before audience
    /// lists existed). `[]`: no token at all.
    #[arg(long = "audience", value_name = "AUDIENCE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// ACME orders get valid authorizations for its `dns_names` without a challenge: the
    /// operator vouches that the names are the integration's (README "ACME").
    #[arg(long = "acme-preauthorized")]
    #[serde(default)]
    pub acme_preauthorized: bool,
}

/// An integration as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationView {
    pub name: String,
    /// `spiffe://<trust domain>/<environment>/<name>`: the identity in its certificates.
    pub spiffe_id: String,
    pub business_owner: String,
    pub technical_owner: String,
    pub purpose: String,
    pub environment: String,
    pub scopes: Vec<String>,
    pub privilege_class: Class,
    /// Longest credential lifetime, in seconds.
    pub max_ttl_secs: u64,
    /// RFC 3339 time by which the owner must recertify.
    pub review_by: String,
    pub approval_ref: String,
    pub allow_server_auth: bool,
    pub dns_names: Vec<String>,
    /// Audiences its tokens may name, sorted; `null`: any audience.
    pub audiences: Option<Vec<String>>,
    /// ACME orders skip challenges for its `dns_names` (policy extension 3).
    pub acme_preauthorized: bool,
    pub status: Lifecycle,
}

impl IntegrationView {
    /// `spec` with its SPIFFE ID under `trust_domain`.
    pub fn new(spec: &IntegrationSpec, trust_domain: &str) -> IntegrationView {
        IntegrationView {
            name: spec.name.clone(),
            spiffe_id: crate::policy::spiffe_id(trust_domain, spec),
            business_owner: spec.business_owner.clone(),
            technical_owner: spec.technical_owner.clone(),
            purpose: spec.purpose.clone(),
            environment: spec.environment.clone(),
            scopes: spec.scopes.clone(),
            privilege_class: spec.privilege_class.into(),
            max_ttl_secs: spec.max_ttl_secs,
            review_by: rfc3339(spec.review_by),
            approval_ref: spec.approval_ref.clone(),
            allow_server_auth: spec.allow_server_auth,
            dns_names: spec.dns_names.clone(),
            audiences: spec.policy.audiences.clone(),
            acme_preauthorized: spec.policy.acme_preauthorized,
            status: spec.status.into(),
        }
    }
}

/// An integration after a registration or a change that applies at once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationUpdate {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// Ledger record of the change; absent when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_index: Option<u64>,
    /// `true` when the request asked for the state the integration already had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<bool>,
}

/// Where an integration stands against its review-by date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStateName {
    Ok,
    DueSoon,
    Overdue,
}

/// One row of the inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InventoryEntry {
    #[serde(flatten)]
    pub integration: IntegrationView,
    /// Unexpired, unrevoked certificates.
    pub live_certificates: u64,
    /// Unexpired, unrevoked tokens.
    pub live_tokens: u64,
    /// Credentials issued in total.
    pub issued_total: u64,
    /// RFC 3339 time of the latest issuance, `null` if none.
    pub last_issuance: Option<String>,
    /// RFC 3339 time of the registration.
    pub registered_at: Option<String>,
    pub review_state: ReviewStateName,
    /// Change requests awaiting a second operator.
    pub pending_changes: u64,
    /// Any of review_overdue, review_due_soon, dormant, privileged, suspended,
    /// decommissioned, change_pending.
    pub flags: Vec<String>,
}

/// `GET /v1/admin/integrations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Inventory {
    pub integrations: Vec<InventoryEntry>,
}
