//! The single place that says yes or no to an issuance. Pure: no I/O, no clock reads;
//! callers pass the integration, the request and `now`. A `Grant` is the only way to get
//! the parameters `issue` signs with, so nothing is signed without a decision.

use credmint_ledger::event::{IntegrationSpec, IntegrationStatus};

use crate::config::TtlConfig;
use crate::issue::ValidCsr;
use crate::registry::class_cap;

/// Why an issuance was refused. Every variant is safe to show to the requester.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("integration {0:?} is suspended")]
    Suspended(String),
    #[error("integration {0:?} is decommissioned")]
    Decommissioned(String),
    #[error("integration {name:?} passed its review-by date ({review_by}); recertification is required before issuance or renewal")]
    ReviewOverdue { name: String, review_by: u64 },
    #[error("requested TTL {requested}s exceeds the integration's maximum of {max}s")]
    TtlTooLong { requested: u64, max: u64 },
    #[error("TTL must be at least 1 second")]
    TtlZero,
    #[error("scope {0:?} is not allowed for this integration")]
    ScopeNotAllowed(String),
    #[error("at least one scope is required")]
    NoScope,
    #[error("audience is required (1-255 bytes)")]
    BadAudience,
    #[error("audience {0:?} is not allowed for this integration")]
    AudienceNotAllowed(String),
    #[error("name {0:?} is outside what this integration may have")]
    NameNotAllowed(String),
    #[error("subjectAltName type {0} is not supported: credmint certifies only dNSName and URI (SPIFFE ID) names")]
    UnsupportedNameType(&'static str),
}

/// What a certificate may contain, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertGrant {
    pub integration: String,
    /// `registry::spec_hash` of the state this grant was decided on.
    pub spec_hash: [u8; 32],
    pub spiffe_id: String,
    pub dns_names: Vec<String>,
    pub ttl_secs: u64,
    pub server_auth: bool,
    /// Subject commonName instead of the SPIFFE ID (ACME: the first DNS name).
    pub common_name: Option<String>,
    /// Whether the certificate carries clientAuth (always, except an ACME `server` profile).
    pub client_auth: bool,
    pub approval_ref: String,
}

/// What a token may contain, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub integration: String,
    /// `registry::spec_hash` of the state this grant was decided on.
    pub spec_hash: [u8; 32],
    pub spiffe_id: String,
    pub audience: String,
    pub scopes: Vec<String>,
    pub ttl_secs: u64,
    pub environment: String,
    pub approval_ref: String,
}

/// `spiffe://<trust-domain>/<environment>/<integration>`.
pub fn spiffe_id(trust_domain: &str, spec: &IntegrationSpec) -> String {
    format!("spiffe://{trust_domain}/{}/{}", spec.environment, spec.name)
}

/// Checks that the integration may receive credentials at `now` (unix seconds).
pub fn check_standing(spec: &IntegrationSpec, now: u64) -> Result<(), Denial> {
    match spec.status {
        IntegrationStatus::Suspended => return Err(Denial::Suspended(spec.name.clone())),
        IntegrationStatus::Decommissioned => return Err(Denial::Decommissioned(spec.name.clone())),
        IntegrationStatus::Active => {}
    }
    if now > spec.review_by {
        return Err(Denial::ReviewOverdue {
            name: spec.name.clone(),
            review_by: spec.review_by,
        });
    }
    Ok(())
}

/// The TTL a credential gets: the request, or the integration's maximum when absent,
/// never above the class ceiling from the configuration.
pub fn decide_ttl(
    spec: &IntegrationSpec,
    requested: Option<u64>,
    limits: &TtlConfig,
) -> Result<u64, Denial> {
    let max = spec
        .max_ttl_secs
        .min(class_cap(spec.privilege_class, limits));
    match requested {
        None => Ok(max),
        Some(0) => Err(Denial::TtlZero),
        Some(t) if t > max => Err(Denial::TtlTooLong { requested: t, max }),
        Some(t) => Ok(t),
    }
}

/// Decides a certificate for a CSR: its dNSName and URI SANs must be the integration's,
/// and it may ask for no other SAN type (an IP address or e-mail name would otherwise be
/// left out of the certificate without the requester noticing).
pub fn decide_certificate(
    spec: &IntegrationSpec,
    csr: &ValidCsr,
    requested_ttl: Option<u64>,
    limits: &TtlConfig,
    trust_domain: &str,
    now: u64,
) -> Result<CertGrant, Denial> {
    check_standing(spec, now)?;
    let ttl_secs = decide_ttl(spec, requested_ttl, limits)?;
    if let Some(kind) = csr.unsupported_names.first() {
        return Err(Denial::UnsupportedNameType(kind));
    }
    let (dns_names, uris) = (&csr.dns_names, &csr.uris);
    let id = spiffe_id(trust_domain, spec);
    if let Some(bad) = uris.iter().find(|u| **u != id) {
        return Err(Denial::NameNotAllowed(bad.clone()));
    }
    if let Some(bad) = dns_names.iter().find(|d| !spec.dns_names.contains(d)) {
        return Err(Denial::NameNotAllowed(bad.clone()));
    }
    Ok(CertGrant {
        integration: spec.name.clone(),
        spec_hash: crate::registry::spec_hash(spec),
        spiffe_id: id,
        dns_names: dns_names.to_vec(),
        ttl_secs,
        server_auth: spec.allow_server_auth,
        client_auth: true,
        common_name: None,
        approval_ref: spec.approval_ref.clone(),
    })
}

/// Decides a token: the audience must be one the integration allows (any, unless it lists
/// them) and the scopes a non-empty subset of its own.
pub fn decide_token(
    spec: &IntegrationSpec,
    audience: &str,
    scopes: &[String],
    requested_ttl: Option<u64>,
    limits: &TtlConfig,
    trust_domain: &str,
    now: u64,
) -> Result<TokenGrant, Denial> {
    check_standing(spec, now)?;
    if audience.is_empty() || audience.len() > 255 {
        return Err(Denial::BadAudience);
    }
    if !spec.policy.allows_audience(audience) {
        return Err(Denial::AudienceNotAllowed(audience.to_string()));
    }
    if scopes.is_empty() {
        return Err(Denial::NoScope);
    }
    if let Some(bad) = scopes.iter().find(|s| !spec.scopes.contains(s)) {
        return Err(Denial::ScopeNotAllowed(bad.clone()));
    }
    let ttl_secs = decide_ttl(spec, requested_ttl, limits)?;
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    Ok(TokenGrant {
        integration: spec.name.clone(),
        spec_hash: crate::registry::spec_hash(spec),
        spiffe_id: spiffe_id(trust_domain, spec),
        audience: audience.to_string(),
        scopes,
        ttl_secs,
        environment: spec.environment.clone(),
        approval_ref: spec.approval_ref.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use credmint_ledger::event::PrivilegeClass;
    use proptest::prelude::*;

    fn spec() -> IntegrationSpec {
        IntegrationSpec {
            name: "ci".into(),
            business_owner: "b".into(),
            technical_owner: "t".into(),
            purpose: "p".into(),
            environment: "prod".into(),
            scopes: vec!["read".into(), "write".into()],
            privilege_class: PrivilegeClass::Routine,
            max_ttl_secs: 600,
            review_by: 1_000,
            approval_ref: "CHG-1".into(),
            allow_server_auth: false,
            dns_names: vec!["ci.example".into()],
            status: IntegrationStatus::Active,
            policy: Default::default(),
        }
    }

    const LIMITS: TtlConfig = TtlConfig {
        routine_max_secs: 3600,
        privileged_max_secs: 300,
        renew_after_expiry_secs: 0,
    };

    #[test]
    fn standing_gates_issuance() {
        let mut s = spec();
        assert!(check_standing(&s, 1_000).is_ok());
        assert!(matches!(
            check_standing(&s, 1_001),
            Err(Denial::ReviewOverdue { .. })
        ));
        s.status = IntegrationStatus::Suspended;
        assert!(matches!(check_standing(&s, 0), Err(Denial::Suspended(_))));
        s.status = IntegrationStatus::Decommissioned;
        assert!(matches!(
            check_standing(&s, 0),
            Err(Denial::Decommissioned(_))
        ));
    }

    #[test]
    fn privileged_class_caps_ttl_below_integration_max() {
        let mut s = spec();
        s.privilege_class = PrivilegeClass::Privileged;
        let g = decide_token(&s, "aud", &["read".into()], None, &LIMITS, "td", 0).unwrap();
        assert_eq!(g.ttl_secs, 300);
    }

    #[test]
    fn tokens_name_only_listed_audiences() {
        let mut s = spec();
        let mint = |s: &IntegrationSpec, aud: &str| {
            decide_token(s, aud, &["read".into()], None, &LIMITS, "td", 0)
        };
        assert!(mint(&s, "anything").is_ok(), "no list: any audience");
        s.policy.audiences = Some(vec!["api".into()]);
        assert_eq!(mint(&s, "api").unwrap().audience, "api");
        assert_eq!(
            mint(&s, "web"),
            Err(Denial::AudienceNotAllowed("web".into()))
        );
        s.policy.audiences = Some(vec![]);
        assert!(mint(&s, "api").is_err(), "an empty list allows no token");
    }

    fn csr(dns: &[&str], uris: &[&str], unsupported: &[&'static str]) -> ValidCsr {
        ValidCsr {
            spki_der: Vec::new(),
            key_kind: crate::issue::LeafKeyKind::P256,
            dns_names: dns.iter().map(|d| d.to_string()).collect(),
            uris: uris.iter().map(|u| u.to_string()).collect(),
            unsupported_names: unsupported.to_vec(),
            key_fingerprint: [0; 32],
        }
    }

    #[test]
    fn names_outside_the_integration_are_refused() {
        let s = spec();
        let decide = |c: &ValidCsr| decide_certificate(&s, c, None, &LIMITS, "td", 0);
        assert!(decide(&csr(&["ci.example"], &["spiffe://td/prod/ci"], &[])).is_ok());
        let bad_uri = decide(&csr(&[], &["spiffe://td/prod/other"], &[]));
        assert!(matches!(bad_uri, Err(Denial::NameNotAllowed(_))));
        let bad_dns = decide(&csr(&["evil.example"], &[], &[]));
        assert!(matches!(bad_dns, Err(Denial::NameNotAllowed(_))));
    }

    #[test]
    fn other_san_types_are_refused_by_type_even_beside_allowed_names() {
        let s = spec();
        let got = decide_certificate(
            &s,
            &csr(&["ci.example"], &[], &["iPAddress", "rfc822Name (e-mail)"]),
            None,
            &LIMITS,
            "td",
            0,
        );
        assert_eq!(got, Err(Denial::UnsupportedNameType("iPAddress")));
        assert!(got
            .unwrap_err()
            .to_string()
            .contains("iPAddress is not supported"));
    }

    proptest! {
        /// Whatever is requested, a grant never exceeds the integration's or the class's
        /// TTL and never carries a scope the integration lacks.
        #[test]
        fn grants_never_exceed_authority(ttl in proptest::option::of(0u64..10_000), scopes in proptest::collection::vec("[a-z]{1,6}", 0..4)) {
            let s = spec();
            if let Ok(g) = decide_token(&s, "aud", &scopes, ttl, &LIMITS, "td", 0) {
                prop_assert!(g.ttl_secs >= 1 && g.ttl_secs <= 600);
                prop_assert!(g.scopes.iter().all(|x| s.scopes.contains(x)));
            }
        }
    }
}
