//! Integration governance rules, pure: what a proposed change is (narrowing, owner change,
//! or an increase of authority that needs a second operator), and how far a
//! recertification may move review-by. No I/O and no clock reads; the routes in
//! `api::governance` pass the current state and `now`.
//!
//! "Increase of authority" is the auditor's definition
//! (`credmint_ledger::verify::semantic::increases_authority`, FORMAT.md §13.3), so what the
//! appliance applies at once is exactly what the offline auditor accepts without approval.

use credmint_ledger::event::{IntegrationSpec, PrivilegeClass};
use credmint_ledger::governance::ReviewCaps;
use credmint_ledger::verify::semantic::increases_authority;
use serde::Deserialize;

use crate::config::{ConfigError, TtlConfig};
use crate::registry::{
    check_audiences, check_dns, check_identifier, check_scope, class_cap, parse_class, FieldError,
};

const DAY: u64 = 86_400;

/// `[governance]` in the config file. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Days before review-by from which the inventory flags an integration
    /// `review_due_soon` (default 14).
    #[serde(default = "default_warning_days")]
    pub review_warning_days: u64,
    /// Furthest a registration or recertification may set review-by for a routine
    /// integration, in days from now (default 365). The auditor must be told a
    /// non-default value (`credmint-audit --routine-review-max-days`).
    #[serde(default = "default_routine_days")]
    pub routine_review_max_days: u64,
    /// The same for a privileged integration (default 90).
    #[serde(default = "default_privileged_days")]
    pub privileged_review_max_days: u64,
    /// Operators `credmint init` creates together with the genesis (default `["admin",
    /// "admin2"]`): the roots of dual control. Every later operator must be requested by
    /// one operator and approved by a different, independent one, so a single init
    /// operator could never add another. Hand each key to a different person. The first
    /// is the CLI's default identity (`data_dir/operator-<name>.pem`).
    #[serde(default = "default_init_operators")]
    pub init_operators: Vec<String>,
}

fn default_init_operators() -> Vec<String> {
    vec!["admin".into(), "admin2".into()]
}

fn default_warning_days() -> u64 {
    14
}
fn default_routine_days() -> u64 {
    365
}
fn default_privileged_days() -> u64 {
    90
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            review_warning_days: default_warning_days(),
            routine_review_max_days: default_routine_days(),
            privileged_review_max_days: default_privileged_days(),
            init_operators: default_init_operators(),
        }
    }
}

impl GovernanceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.routine_review_max_days == 0 || self.routine_review_max_days > 3650 {
            return invalid(
                "governance.routine_review_max_days",
                "must be between 1 and 3650",
            );
        }
        if self.privileged_review_max_days == 0
            || self.privileged_review_max_days > self.routine_review_max_days
        {
            return invalid(
                "governance.privileged_review_max_days",
                "must be at least 1 and at most routine_review_max_days",
            );
        }
        if self.review_warning_days > 3650 {
            return invalid("governance.review_warning_days", "must be at most 3650");
        }
        let ops = &self.init_operators;
        let unique: std::collections::HashSet<&String> = ops.iter().collect();
        // One root could never add a second operator nor approve anything.
        if ops.len() < 2 || ops.len() > 8 || unique.len() != ops.len() {
            return invalid(
                "governance.init_operators",
                "must name 2 to 8 distinct operators (dual control needs two roots)",
            );
        }
        if let Some(bad) = ops.iter().find(|n| check_identifier("name", n).is_err()) {
            return Err(ConfigError::Invalid {
                key: "governance.init_operators",
                message: format!("{bad:?} is not a valid operator name (a-z, 0-9, '-')"),
            });
        }
        Ok(())
    }

    /// The review caps in force: the rule is `credmint_ledger::governance::ReviewCaps`, the
    /// one definition the auditor applies too (FORMAT.md §13.3).
    pub fn review_caps(&self) -> ReviewCaps {
        ReviewCaps {
            routine_days: self.routine_review_max_days,
            privileged_days: self.privileged_review_max_days,
        }
    }
}

pub use crate::wire::ChangeBody;

/// What a proposed state is, compared with the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Nothing would change.
    Unchanged,
    /// Applies at once: authority shrinks or stays, owners and `approval_ref` may change.
    /// `narrowed` says whether authority fields changed, `owners` whether an owner did.
    Immediate { narrowed: bool, owners: bool },
    /// Needs a second operator: the text says why (first reason found).
    NeedsApproval(String),
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn non_empty(field: &'static str, v: String) -> Result<String, FieldError> {
    if v.trim().is_empty() {
        Err(field_err(field, "must not be empty"))
    } else {
        Ok(v)
    }
}

/// Applies `body` to `current`, validating each given field. Status and review-by never
/// change here (they have their own verbs).
pub fn propose(
    current: &IntegrationSpec,
    body: &ChangeBody,
    ttl: &TtlConfig,
) -> Result<IntegrationSpec, FieldError> {
    let mut next = current.clone();
    if let Some(scopes) = &body.scopes {
        if scopes.is_empty() || scopes.len() > 64 {
            return Err(field_err("scopes", "must list 1 to 64 scopes"));
        }
        if let Some(bad) = scopes.iter().find(|s| !check_scope(s)) {
            return Err(field_err(
                "scopes",
                format!("invalid scope {bad:?} (letters, digits and :._/- only)"),
            ));
        }
        next.scopes = scopes.clone();
    }
    if let Some(class) = &body.privilege_class {
        next.privilege_class = parse_class(class)?;
    }
    if let Some(ttl_secs) = body.max_ttl_secs {
        next.max_ttl_secs = ttl_secs;
    }
    let cap = class_cap(next.privilege_class, ttl);
    if next.max_ttl_secs == 0 || next.max_ttl_secs > cap {
        return Err(field_err(
            "max_ttl_secs",
            format!("must be between 1 and {cap} for this privilege class"),
        ));
    }
    if let Some(dns) = &body.dns_names {
        if let Some(bad) = dns.iter().find(|d| !check_dns(d)) {
            return Err(field_err("dns_names", format!("invalid DNS name {bad:?}")));
        }
        next.dns_names = dns.clone();
    }
    if let Some(v) = body.allow_server_auth {
        next.allow_server_auth = v;
    }
    match (&body.audiences, body.any_audience) {
        (Some(_), Some(_)) => {
            return Err(field_err(
                "audiences",
                "give either audiences or any_audience, not both",
            ))
        }
        (Some(list), None) => next.policy.audiences = Some(check_audiences(list)?),
        (None, Some(true)) => next.policy.audiences = None,
        (None, Some(false)) => {
            return Err(field_err(
                "any_audience",
                "only `true` is meaningful; to restrict audiences, list them in `audiences`",
            ))
        }
        (None, None) => {}
    }
    if let Some(v) = body.acme_preauthorized {
        next.policy.acme_preauthorized = v;
    }
    if let Some(v) = &body.business_owner {
        next.business_owner = non_empty("business_owner", v.clone())?;
    }
    if let Some(v) = &body.technical_owner {
        next.technical_owner = non_empty("technical_owner", v.clone())?;
    }
    if let Some(v) = &body.purpose {
        next.purpose = non_empty("purpose", v.clone())?;
    }
    if let Some(v) = &body.approval_ref {
        next.approval_ref = non_empty("approval_ref", v.clone())?;
    }
    Ok(next)
}

fn authority_changed(a: &IntegrationSpec, b: &IntegrationSpec) -> bool {
    a.scopes != b.scopes
        || a.max_ttl_secs != b.max_ttl_secs
        || a.privilege_class != b.privilege_class
        || a.dns_names != b.dns_names
        || a.allow_server_auth != b.allow_server_auth
        || a.policy != b.policy
}

/// Classifies `next` against `current`. Any increase of authority, and any change of the
/// stated purpose (what the integration was approved for), needs a second operator;
/// narrowing authority, changing owners and naming a new approval reference apply at once.
pub fn classify(current: &IntegrationSpec, next: &IntegrationSpec) -> Classification {
    if current == next {
        return Classification::Unchanged;
    }
    if let Some(why) = increases_authority(current, next) {
        return Classification::NeedsApproval(why);
    }
    if current.purpose != next.purpose {
        return Classification::NeedsApproval("changes the stated purpose".into());
    }
    let owners = current.business_owner != next.business_owner
        || current.technical_owner != next.technical_owner;
    let narrowed = authority_changed(current, next);
    if !owners && !narrowed {
        // Only the approval reference differs: relabelling an approval is not something
        // one operator does alone.
        return Classification::NeedsApproval("changes only the approval reference".into());
    }
    Classification::Immediate { narrowed, owners }
}

/// The reference text of an `OwnerChanged` event: old and new owners, then the reason.
pub fn owner_change_reference(
    before: &IntegrationSpec,
    after: &IntegrationSpec,
    reason: &str,
) -> String {
    format!(
        "owners {}/{} -> {}/{} (business/technical): {reason}",
        before.business_owner, before.technical_owner, after.business_owner, after.technical_owner
    )
}

/// Checks a review-by set at `now` (by a registration or a recertification): in the
/// future and within the class cap.
pub fn check_review_by(
    cfg: &GovernanceConfig,
    class: PrivilegeClass,
    review_by: u64,
    now: u64,
) -> Result<(), FieldError> {
    if review_by <= now {
        return Err(field_err("review_by", "must be in the future"));
    }
    cfg.review_caps()
        .check(class, review_by, now)
        .map_err(|e| field_err("review_by", e.to_string()))
}

/// Review state of an integration at `now`, for the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    Ok,
    DueSoon,
    Overdue,
}

pub fn review_state(cfg: &GovernanceConfig, review_by: u64, now: u64) -> ReviewState {
    if now > review_by {
        ReviewState::Overdue
    } else if review_by - now <= cfg.review_warning_days * DAY {
        ReviewState::DueSoon
    } else {
        ReviewState::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credmint_ledger::event::IntegrationStatus;

    #[test]
    fn dual_control_needs_two_distinct_valid_init_operators() {
        let with = |ops: &[&str]| GovernanceConfig {
            init_operators: ops.iter().map(|s| s.to_string()).collect(),
            ..GovernanceConfig::default()
        };
        assert!(with(&["admin", "admin2"]).validate().is_ok());
        for bad in [
            &["admin"][..],
            &["admin", "admin"],
            &["admin", "Bad Name"],
            &[],
        ] {
            assert!(with(bad).validate().is_err(), "{bad:?}");
        }
    }

    fn spec() -> IntegrationSpec {
        IntegrationSpec {
            name: "ci".into(),
            business_owner: "payments".into(),
            technical_owner: "alice".into(),
            purpose: "deploys".into(),
            environment: "prod".into(),
            scopes: vec!["read".into(), "write".into()],
            privilege_class: PrivilegeClass::Routine,
            max_ttl_secs: 600,
            review_by: 10 * DAY,
            approval_ref: "CHG-1".into(),
            allow_server_auth: false,
            dns_names: vec!["ci.example".into()],
            status: IntegrationStatus::Active,
            policy: Default::default(),
        }
    }

    const TTL: TtlConfig = TtlConfig {
        routine_max_secs: 3600,
        privileged_max_secs: 900,
        renew_after_expiry_secs: 0,
    };

    fn body(v: serde_json::Value) -> ChangeBody {
        serde_json::from_value(v).unwrap()
    }

    fn class_of(v: serde_json::Value) -> Classification {
        let cur = spec();
        classify(&cur, &propose(&cur, &body(v), &TTL).unwrap())
    }

    #[test]
    fn decreases_apply_at_once() {
        assert_eq!(
            class_of(serde_json::json!({"scopes": ["read"], "max_ttl_secs": 60})),
            Classification::Immediate {
                narrowed: true,
                owners: false
            }
        );
        assert_eq!(
            class_of(serde_json::json!({"dns_names": []})),
            Classification::Immediate {
                narrowed: true,
                owners: false
            }
        );
    }

    #[test]
    fn every_increase_needs_approval() {
        for v in [
            serde_json::json!({"scopes": ["read", "admin"]}),
            serde_json::json!({"max_ttl_secs": 601}),
            serde_json::json!({"privilege_class": "privileged"}),
            serde_json::json!({"allow_server_auth": true}),
            serde_json::json!({"dns_names": ["ci.example", "x.example"]}),
            // Mixed: one narrowing and one increase is one request.
            serde_json::json!({"scopes": ["admin"]}),
            serde_json::json!({"purpose": "something else"}),
            serde_json::json!({"approval_ref": "CHG-2"}),
        ] {
            assert!(
                matches!(class_of(v.clone()), Classification::NeedsApproval(_)),
                "{v}"
            );
        }
    }

    #[test]
    fn audience_lists_narrow_at_once_and_widen_under_dual_control() {
        let mut cur = spec();
        cur.policy.audiences = Some(vec!["api".into(), "web".into()]);
        let step = |v: serde_json::Value| classify(&cur, &propose(&cur, &body(v), &TTL).unwrap());
        assert_eq!(
            step(serde_json::json!({"audiences": ["web"]})),
            Classification::Immediate {
                narrowed: true,
                owners: false
            }
        );
        for v in [
            serde_json::json!({"audiences": ["web", "db"]}),
            serde_json::json!({"any_audience": true}),
        ] {
            assert!(
                matches!(step(v.clone()), Classification::NeedsApproval(_)),
                "{v}"
            );
        }
        // Canonical form: unsorted input with a duplicate is the same (unchanged) state.
        assert_eq!(
            step(serde_json::json!({"audiences": ["web", "api", "web"]})),
            Classification::Unchanged
        );
        for (v, field) in [
            (serde_json::json!({"audiences": [""]}), "audiences"),
            (
                serde_json::json!({"audiences": ["a"], "any_audience": true}),
                "audiences",
            ),
            (serde_json::json!({"any_audience": false}), "any_audience"),
        ] {
            assert_eq!(
                propose(&cur, &body(v.clone()), &TTL).unwrap_err().field,
                field,
                "{v}"
            );
        }
    }

    #[test]
    fn owner_change_is_immediate_and_names_both_owners() {
        let cur = spec();
        let next = propose(
            &cur,
            &body(serde_json::json!({"technical_owner": "bob"})),
            &TTL,
        )
        .unwrap();
        assert_eq!(
            classify(&cur, &next),
            Classification::Immediate {
                narrowed: false,
                owners: true
            }
        );
        let r = owner_change_reference(&cur, &next, "team move");
        assert!(r.contains("payments/alice -> payments/bob"), "{r}");
        assert_eq!(classify(&cur, &cur), Classification::Unchanged);
    }

    #[test]
    fn bad_fields_are_named() {
        let cur = spec();
        for (v, field) in [
            (serde_json::json!({"scopes": []}), "scopes"),
            (serde_json::json!({"scopes": ["bad scope"]}), "scopes"),
            (serde_json::json!({"max_ttl_secs": 0}), "max_ttl_secs"),
            (
                serde_json::json!({"privilege_class": "root"}),
                "privilege_class",
            ),
            // Privileged caps the TTL at 900: 3600 is refused with the class change.
            (
                serde_json::json!({"privilege_class": "privileged", "max_ttl_secs": 3600}),
                "max_ttl_secs",
            ),
            (
                serde_json::json!({"dns_names": ["UP.example"]}),
                "dns_names",
            ),
            (serde_json::json!({"business_owner": " "}), "business_owner"),
        ] {
            assert_eq!(propose(&cur, &body(v), &TTL).unwrap_err().field, field);
        }
    }

    #[test]
    fn recertification_is_limited_by_class() {
        let cfg = GovernanceConfig::default();
        let now = 1000 * DAY + 5;
        assert!(check_review_by(&cfg, PrivilegeClass::Privileged, now + 90 * DAY, now).is_ok());
        assert!(check_review_by(&cfg, PrivilegeClass::Privileged, now + 91 * DAY, now).is_err());
        assert!(check_review_by(&cfg, PrivilegeClass::Routine, now + 300 * DAY, now).is_ok());
        assert!(check_review_by(&cfg, PrivilegeClass::Routine, now, now).is_err());
    }

    #[test]
    fn review_states() {
        let cfg = GovernanceConfig::default();
        assert_eq!(review_state(&cfg, 100 * DAY, 0), ReviewState::Ok);
        assert_eq!(
            review_state(&cfg, 100 * DAY, 90 * DAY),
            ReviewState::DueSoon
        );
        assert_eq!(
            review_state(&cfg, 100 * DAY, 100 * DAY + 1),
            ReviewState::Overdue
        );
    }
}
