//! Shape checks for integration registrations: every missing or invalid field is refused
//! with its name, before anything reaches the ledger.

use credmint_ledger::event::policy::MAX_AUDIENCES;
use credmint_ledger::event::{
    IntegrationSpec, IntegrationStatus, PolicyExtensions, PrivilegeClass,
};
use credmint_ledger::governance::ReviewCaps;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::config::TtlConfig;
pub use crate::wire::Registration;

/// A field that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_err(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

fn required(field: &'static str, v: Option<String>) -> Result<String, FieldError> {
    match v {
        Some(s) if !s.trim().is_empty() => {
            if s.len() > 255 {
                Err(field_err(field, "at most 255 bytes"))
            } else {
                Ok(s)
            }
        }
        _ => Err(field_err(field, "is required")),
    }
}

/// Lowercase DNS-label-like identifiers: they become SPIFFE path segments.
pub fn check_identifier(field: &'static str, s: &str) -> Result<(), FieldError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(field_err(
            field,
            "must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}

/// Whether `s` is an acceptable scope name.
pub fn check_scope(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":._/-".contains(&b))
}

/// Whether `s` is an acceptable DNS name (optionally `*.`-prefixed).
pub fn check_dns(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Checks an audience list and puts it in its one canonical order (sorted, distinct), the
/// form the ledger requires (FORMAT.md §3.4.1).
pub fn check_audiences(list: &[String]) -> Result<Vec<String>, FieldError> {
    if list.len() > MAX_AUDIENCES {
        return Err(field_err(
            "audiences",
            format!("at most {MAX_AUDIENCES} audiences"),
        ));
    }
    if let Some(bad) = list.iter().find(|a| a.is_empty() || a.len() > 255) {
        return Err(field_err(
            "audiences",
            format!("invalid audience {bad:?} (1-255 bytes)"),
        ));
    }
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    Ok(list)
}

/// Parses `review_by`: RFC 3339, or a date meaning the end of that day (UTC).
pub fn parse_review_by(s: &str) -> Result<u64, FieldError> {
    let ts = if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        t.unix_timestamp()
    } else {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let d = Date::parse(s, &fmt)
            .map_err(|_| field_err("review_by", "must be YYYY-MM-DD or an RFC 3339 time"))?;
        d.midnight().assume_utc().unix_timestamp() + 86_399
    };
    u64::try_from(ts).map_err(|_| field_err("review_by", "must be after 1970"))
}

pub fn parse_class(s: &str) -> Result<PrivilegeClass, FieldError> {
    match s {
        "routine" => Ok(PrivilegeClass::Routine),
        "privileged" => Ok(PrivilegeClass::Privileged),
        _ => Err(field_err(
            "privilege_class",
            "must be \"routine\" or \"privileged\"",
        )),
    }
}

/// The TTL ceiling the configuration puts on a class.
pub fn class_cap(class: PrivilegeClass, ttl: &TtlConfig) -> u64 {
    match class {
        PrivilegeClass::Routine => ttl.routine_max_secs,
        PrivilegeClass::Privileged => ttl.privileged_max_secs,
    }
}

/// Turns a registration into a spec, or names the first bad field. `review` caps how far
/// ahead review-by may be, as for a recertification (the rule the auditor applies too).
pub fn validate(
    reg: Registration,
    ttl: &TtlConfig,
    review: &ReviewCaps,
    now_unix: u64,
) -> Result<IntegrationSpec, FieldError> {
    let name = required("name", reg.name)?;
    check_identifier("name", &name)?;
    let business_owner = required("business_owner", reg.business_owner)?;
    let technical_owner = required("technical_owner", reg.technical_owner)?;
    let purpose = required("purpose", reg.purpose)?;
    let environment = required("environment", reg.environment)?;
    check_identifier("environment", &environment)?;
    let scopes = reg
        .scopes
        .ok_or_else(|| field_err("scopes", "is required"))?;
    if scopes.is_empty() || scopes.len() > 64 {
        return Err(field_err("scopes", "must list 1 to 64 scopes"));
    }
    if let Some(bad) = scopes.iter().find(|s| !check_scope(s)) {
        return Err(field_err(
            "scopes",
            format!("invalid scope {bad:?} (letters, digits and :._/- only)"),
        ));
    }
    let class = parse_class(&required("privilege_class", reg.privilege_class)?)?;
    let cap = class_cap(class, ttl);
    let max_ttl_secs = reg
        .max_ttl_secs
        .ok_or_else(|| field_err("max_ttl_secs", "is required"))?;
    if max_ttl_secs == 0 || max_ttl_secs > cap {
        return Err(field_err(
            "max_ttl_secs",
            format!("must be between 1 and {cap} for this privilege class"),
        ));
    }
    let review_by = parse_review_by(&required("review_by", reg.review_by)?)?;
    if review_by <= now_unix {
        return Err(field_err("review_by", "must be in the future"));
    }
    review
        .check(class, review_by, now_unix)
        .map_err(|e| field_err("review_by", e.to_string()))?;
    let approval_ref = required("approval_ref", reg.approval_ref)?;
    if let Some(bad) = reg.dns_names.iter().find(|d| !check_dns(d)) {
        return Err(field_err("dns_names", format!("invalid DNS name {bad:?}")));
    }
    let audiences = reg.audiences.as_deref().map(check_audiences).transpose()?;
    Ok(IntegrationSpec {
        name,
        business_owner,
        technical_owner,
        purpose,
        environment,
        scopes,
        privilege_class: class,
        max_ttl_secs,
        review_by,
        approval_ref,
        allow_server_auth: reg.allow_server_auth,
        dns_names: reg.dns_names,
        status: IntegrationStatus::Active,
        policy: PolicyExtensions {
            audiences,
            acme_preauthorized: reg.acme_preauthorized,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl() -> TtlConfig {
        TtlConfig {
            routine_max_secs: 3600,
            privileged_max_secs: 900,
            renew_after_expiry_secs: 0,
        }
    }

    fn good() -> Registration {
        serde_json::from_value(good_json()).unwrap()
    }

    fn good_json() -> serde_json::Value {
        serde_json::json!({
            "name": "ci-deploy", "business_owner": "payments", "technical_owner": "alice",
            "purpose": "deploys", "environment": "prod", "scopes": ["deploy:write"],
            "privilege_class": "routine", "max_ttl_secs": 900, "review_by": "2099-01-01",
            "approval_ref": "CHG-1"
        })
    }

    /// 2098-06-01T00:00:00Z: seven months before the registrations' review-by.
    const NOW: u64 = 4_052_419_200;

    fn caps() -> ReviewCaps {
        ReviewCaps::default()
    }

    #[test]
    fn valid_registration_passes() {
        let spec = validate(good(), &ttl(), &caps(), NOW).unwrap();
        assert_eq!(spec.review_by, 4_070_995_199);
    }

    #[test]
    fn each_missing_field_is_named() {
        for field in [
            "name",
            "business_owner",
            "technical_owner",
            "purpose",
            "environment",
            "scopes",
            "privilege_class",
            "max_ttl_secs",
            "review_by",
            "approval_ref",
        ] {
            let mut v = good_json();
            v.as_object_mut().unwrap().remove(field);
            let reg: Registration = serde_json::from_value(v).unwrap();
            let err = validate(reg, &ttl(), &caps(), NOW).unwrap_err();
            assert_eq!(err.field, field);
        }
    }

    #[test]
    fn privileged_ttl_is_capped_by_class() {
        let mut reg = good();
        reg.privilege_class = Some("privileged".into());
        reg.max_ttl_secs = Some(1800);
        assert_eq!(
            validate(reg, &ttl(), &caps(), NOW).unwrap_err().field,
            "max_ttl_secs"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut reg = good();
        reg.name = Some("Bad Name".into());
        assert_eq!(
            validate(reg, &ttl(), &caps(), NOW).unwrap_err().field,
            "name"
        );
        let mut reg = good();
        reg.review_by = Some("2001-01-01".into());
        assert_eq!(
            validate(reg, &ttl(), &caps(), 10_000_000_000)
                .unwrap_err()
                .field,
            "review_by"
        );
        let mut reg = good();
        reg.dns_names = vec!["UPPER.example".into()];
        assert_eq!(
            validate(reg, &ttl(), &caps(), NOW).unwrap_err().field,
            "dns_names"
        );
    }

    #[test]
    fn review_by_is_capped_by_class_as_for_a_recertification() {
        let at = |review_by: &str, class: &str| {
            let mut reg = good();
            reg.review_by = Some(review_by.into());
            reg.privilege_class = Some(class.into());
            reg.max_ttl_secs = Some(600);
            validate(reg, &ttl(), &caps(), NOW)
        };
        // NOW + 365 days is 2099-06-01; + 90 days is 2098-08-30.
        assert!(at("2099-06-01", "routine").is_ok());
        let err = at("2099-06-02", "routine").unwrap_err();
        assert_eq!(err.field, "review_by");
        assert!(err.to_string().contains("at most 365 days"), "{err}");
        assert!(at("9999-12-31", "routine").is_err());
        assert!(at("2098-08-30", "privileged").is_ok());
        let err = at("2098-08-31", "privileged").unwrap_err();
        assert!(err.to_string().contains("at most 90 days"), "{err}");
    }

    #[test]
    fn dns_names_are_checked() {
        let mut reg = good();
        reg.dns_names = vec!["UPPER.example".into()];
        assert_eq!(
            validate(reg, &ttl(), &caps(), NOW).unwrap_err().field,
            "dns_names"
        );
    }
}
