//! JSON shapes of ledger objects on the wire (documented in README "HTTP API").

use credmint_ledger::event::{IntegrationSpec, IntegrationStatus, PrivilegeClass};
use serde_json::{json, Value};

pub use crate::clock::rfc3339;

pub fn class_name(c: PrivilegeClass) -> &'static str {
    match c {
        PrivilegeClass::Routine => "routine",
        PrivilegeClass::Privileged => "privileged",
    }
}

pub fn status_name(s: IntegrationStatus) -> &'static str {
    match s {
        IntegrationStatus::Active => "active",
        IntegrationStatus::Suspended => "suspended",
        IntegrationStatus::Decommissioned => "decommissioned",
    }
}

pub fn integration(spec: &IntegrationSpec, spiffe_id: &str) -> Value {
    json!({
        "name": spec.name,
        "spiffe_id": spiffe_id,
        "business_owner": spec.business_owner,
        "technical_owner": spec.technical_owner,
        "purpose": spec.purpose,
        "environment": spec.environment,
        "scopes": spec.scopes,
        "privilege_class": class_name(spec.privilege_class),
        "max_ttl_secs": spec.max_ttl_secs,
        "review_by": rfc3339(spec.review_by),
        "approval_ref": spec.approval_ref,
        "allow_server_auth": spec.allow_server_auth,
        "dns_names": spec.dns_names,
        "status": status_name(spec.status),
    })
}

/// An integration as the API shows it, with its SPIFFE ID under this appliance's trust domain.
pub fn integration_of(state: &crate::app::AppState, spec: &IntegrationSpec) -> Value {
    integration(
        spec,
        &crate::policy::spiffe_id(&state.config.identity.trust_domain, spec),
    )
}
