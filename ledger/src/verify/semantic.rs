//! Semantic verification: what the records *mean* (FORMAT.md §13), checked
//! record by record after the byte-level checks passed. Every broken rule is
//! a [`SemanticViolation`]; checking goes on, so one run reports them all.
//!
//! Memory is constant except for what the rules need: one 16-byte slot per
//! credential (a 12-byte salted SHA-256 key, a 31-bit integration id and a
//! revoked flag; ~24 bytes per credential with the table's slack) and per
//! enrollment token (plus 16 bytes of expiry and state), the integrations, the
//! operators, the change requests, and the ACME EAB keys and accounts (few: one per
//! ACME client, nothing per certificate).

use std::collections::HashMap;

use super::acme::{AcmeBook, Problem};
use super::compact::{CompactMap, Keyer};
use super::monitors::MonitorBook;
use super::operators::OperatorBook;

use sha2::{Digest, Sha256};

use crate::event::{
    AcmeAccountChange, AcmeAccountChanged, AcmeAccountCreated, AcmeEabCreated, ChangeKind, Event,
    IntegrationSpec, IntegrationStatus, OperatorCertIssued, PolicyExtensions, PrivilegeClass,
};
use crate::governance::{ApprovalRefusal, Lineage, ReviewCaps};
use crate::record::Record;

/// Violations kept in full; beyond this only the count grows.
pub const MAX_REPORTED_VIOLATIONS: usize = 100;
/// Seconds a certificate's notBefore may be backdated (counted into its TTL).
pub const CERT_BACKDATE_SECS: u64 = 30;

/// One broken semantic rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SemanticViolation {
    /// Index of the record that breaks it.
    pub index: u64,
    /// Stable rule name (FORMAT.md §13).
    pub rule: &'static str,
    /// Human detail.
    pub detail: String,
}

impl std::fmt::Display for SemanticViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}: {}", self.index, self.rule, self.detail)
    }
}

/// Who an actor string says caused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// `operator:<name>`.
    Operator(&'a str),
    /// `workload:<integration>`.
    Workload(&'a str),
    /// `enrollment:<integration>`.
    Enrollment(&'a str),
    /// `acme:<account id>`: an ACME account acting (FORMAT.md §13.7).
    Acme(&'a str),
    /// `acme-key:<serial as lowercase hex>`: someone proving possession of that
    /// certificate's private key (RFC 8555 §7.6 revocation by certificate key).
    AcmeKey(&'a str),
    /// `system:<component>`.
    System(&'a str),
    /// Anything else.
    Other,
}

impl<'a> Actor<'a> {
    /// Parses an actor string (FORMAT.md §13.1).
    pub fn parse(actor: &'a str) -> Self {
        let Some((class, name)) = actor.split_once(':') else {
            return Actor::Other;
        };
        if name.is_empty() {
            return Actor::Other;
        }
        match class {
            "operator" => Actor::Operator(name),
            "workload" => Actor::Workload(name),
            "enrollment" => Actor::Enrollment(name),
            "acme" => Actor::Acme(name),
            "acme-key" => Actor::AcmeKey(name),
            "system" => Actor::System(name),
            _ => Actor::Other,
        }
    }
}

/// No integration (operator certificates).
const NO_INTEGRATION: u32 = 0x3fff_ffff;
const REVOKED: u32 = 0x8000_0000;
/// With REVOKED: the (only) revocation so far said `superseded` (§13.2: one later
/// revocation with another reason may follow).
const SUPERSEDED: u32 = 0x4000_0000;
/// RFC 5280 CRLReason superseded.
const REASON_SUPERSEDED: u8 = 4;

/// 16-byte unsalted key of a credential id within a domain (serials, jtis and
/// enrollment tokens apart); used by the query collector's small maps.
pub(crate) fn cred_key(domain: &[u8], id: &[u8]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(domain)
        .chain_update((id.len() as u32).to_be_bytes())
        .chain_update(id)
        .finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

#[derive(Debug)]
struct Integration {
    spec: IntegrationSpec,
    /// Index of the last record that registered or changed it: a change request older
    /// than this is superseded (the appliance answers 409 stale).
    last_change: u64,
}

#[derive(Debug)]
struct Enrollment {
    expires_at: u64,
    integration: u32,
    used: bool,
}

#[derive(Debug)]
struct Request {
    proposed: IntegrationSpec,
    actor: String,
    approved: bool,
}

/// The last record, when it was a certificate issuance (enrollment adjacency).
#[derive(Debug)]
struct LastCert {
    index: u64,
    serial: Vec<u8>,
    integration: String,
    by_enrollment: bool,
}

/// The credential an issuance record creates. ACME accounts obtain certificates only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredKind {
    Certificate,
    Token,
}

impl CredKind {
    fn plural(self) -> &'static str {
        match self {
            CredKind::Certificate => "certificates",
            CredKind::Token => "tokens",
        }
    }

    /// The actor classes that may issue it (FORMAT.md §13.1), for violation details.
    fn issuers(self) -> &'static str {
        match self {
            CredKind::Certificate => "workload:, enrollment:, acme: or operator:",
            CredKind::Token => "workload:, enrollment: or operator:",
        }
    }
}

/// What a revocation record names.
#[derive(Debug, Clone, Copy)]
enum Revocation<'a> {
    /// Revoked (tag 3): a certificate or operator certificate.
    Certificate { serial: &'a [u8], reason: u8 },
    /// TokenRevoked (tag 10).
    Token { jti: &'a str },
}

impl Revocation<'_> {
    fn plural(self) -> &'static str {
        match self {
            Revocation::Certificate { .. } => "certificates",
            Revocation::Token { .. } => "tokens",
        }
    }

    /// The actor classes that may revoke it (FORMAT.md §13.1), for violation details.
    fn revokers(self) -> &'static str {
        match self {
            Revocation::Certificate { .. } => "operator:, workload:, acme:, acme-key: or system:",
            Revocation::Token { .. } => "operator:, workload: or system:",
        }
    }
}

/// Counts of what the bundle holds, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SemanticStats {
    /// Integrations registered.
    pub integrations: u64,
    /// Of those, Active now.
    pub integrations_active: u64,
    /// Suspended now.
    pub integrations_suspended: u64,
    /// Decommissioned.
    pub integrations_decommissioned: u64,
    /// Operators with an operator certificate.
    pub operators: u64,
    /// Distinct certificate serials (workload and operator).
    pub certificates: u64,
    /// Distinct token jtis.
    pub tokens: u64,
    /// Enrollment tokens created.
    pub enrollments: u64,
    /// Monitoring (read-only) tokens granted.
    pub monitor_tokens: u64,
    /// ACME External Account Binding keys created.
    pub acme_eab_keys: u64,
    /// ACME accounts created.
    pub acme_accounts: u64,
}

/// The semantic state machine; feed every verified record in order.
#[derive(Debug)]
pub struct SemanticChecker {
    keyer: Keyer,
    /// serial key -> integration id | REVOKED (one serial space for all certificates).
    serials: CompactMap,
    /// jti key -> integration id | REVOKED.
    jtis: CompactMap,
    /// token hash key -> index into `enrollment_info`.
    enrollments: CompactMap,
    enrollment_info: Vec<Enrollment>,
    names: HashMap<String, u32>,
    integrations: Vec<Integration>,
    requests: HashMap<u64, Request>,
    operators: OperatorBook,
    monitors: MonitorBook,
    acme: AcmeBook,
    /// Still inside the init run: records 1, 2, ... that are all OperatorCertIssued by
    /// `system:init` (the init operators, FORMAT.md §13.5).
    init_run: bool,
    last_cert: Option<LastCert>,
    /// How far ahead a registration or recertification may set review-by (§13.3).
    review_caps: ReviewCaps,
    violations: Vec<SemanticViolation>,
    total: u64,
}

impl Default for SemanticChecker {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `new` grants more than `old`: a new scope, a longer max TTL,
/// Routine -> Privileged, serverAuth newly allowed, a new DNS name, or a wider policy
/// extension ([`PolicyExtensions::increases_authority`]).
pub fn increases_authority(old: &IntegrationSpec, new: &IntegrationSpec) -> Option<String> {
    if let Some(s) = new.scopes.iter().find(|s| !old.scopes.contains(s)) {
        return Some(format!("adds scope {s:?}"));
    }
    if new.max_ttl_secs > old.max_ttl_secs {
        return Some(format!(
            "raises max_ttl_secs {} -> {}",
            old.max_ttl_secs, new.max_ttl_secs
        ));
    }
    if old.privilege_class == PrivilegeClass::Routine
        && new.privilege_class == PrivilegeClass::Privileged
    {
        return Some("raises privilege class Routine -> Privileged".into());
    }
    if !old.allow_server_auth && new.allow_server_auth {
        return Some("allows serverAuth".into());
    }
    if let Some(d) = new.dns_names.iter().find(|d| !old.dns_names.contains(d)) {
        return Some(format!("adds DNS name {d:?}"));
    }
    PolicyExtensions::increases_authority(&old.policy, &new.policy)
}

impl SemanticChecker {
    /// Empty state, before genesis, with the default review caps (365 / 90 days).
    pub fn new() -> Self {
        Self::with_review_caps(ReviewCaps::default())
    }

    /// Empty state, before genesis, checking review-by against `review_caps` (the
    /// deployment's `[governance]` caps, when they are not the defaults).
    pub fn with_review_caps(review_caps: ReviewCaps) -> Self {
        SemanticChecker {
            keyer: Keyer::new(),
            serials: CompactMap::new(),
            jtis: CompactMap::new(),
            enrollments: CompactMap::new(),
            enrollment_info: Vec::new(),
            names: HashMap::new(),
            integrations: Vec::new(),
            requests: HashMap::new(),
            operators: OperatorBook::default(),
            monitors: MonitorBook::default(),
            acme: AcmeBook::default(),
            init_run: true,
            last_cert: None,
            review_caps,
            violations: Vec::new(),
            total: 0,
        }
    }

    /// The first [`MAX_REPORTED_VIOLATIONS`] violations.
    pub fn violations(&self) -> &[SemanticViolation] {
        &self.violations
    }

    /// All violations found, reported or not.
    pub fn total_violations(&self) -> u64 {
        self.total
    }

    /// Counts for the summary.
    pub fn stats(&self) -> SemanticStats {
        let count = |s: IntegrationStatus| {
            self.integrations
                .iter()
                .filter(|i| i.spec.status == s)
                .count() as u64
        };
        SemanticStats {
            integrations: self.integrations.len() as u64,
            integrations_active: count(IntegrationStatus::Active),
            integrations_suspended: count(IntegrationStatus::Suspended),
            integrations_decommissioned: count(IntegrationStatus::Decommissioned),
            operators: self.operators.len() as u64,
            certificates: self.serials.len(),
            tokens: self.jtis.len(),
            enrollments: self.enrollments.len(),
            monitor_tokens: self.monitors.granted() as u64,
            acme_eab_keys: self.acme.eab_keys() as u64,
            acme_accounts: self.acme.accounts() as u64,
        }
    }

    fn flag(&mut self, index: u64, rule: &'static str, detail: String) {
        self.total += 1;
        if self.violations.len() < MAX_REPORTED_VIOLATIONS {
            self.violations.push(SemanticViolation {
                index,
                rule,
                detail,
            });
        }
    }

    /// Ends the stream: a certificate issued through enrollment must be
    /// followed by its `EnrollmentUsed`, also at the very end.
    pub fn finish(&mut self) {
        if let Some(last) = self.last_cert.take() {
            if last.by_enrollment {
                self.flag(
                    last.index,
                    "enrollment_cert_without_use",
                    "certificate issued by an enrollment actor is not followed by its enrollment_used".into(),
                );
            }
        }
    }

    /// `review_too_far`: a review-by set at `now` beyond the class cap
    /// (`governance::ReviewCaps`, the rule the appliance applies).
    fn check_review_by(&mut self, index: u64, now: u64, spec: &IntegrationSpec, by: &str) {
        if let Err(e) = self
            .review_caps
            .check(spec.privilege_class, spec.review_by, now)
        {
            self.flag(
                index,
                "review_too_far",
                format!(
                    "{by} of {:?} at {now} sets review_by {}: {e}",
                    spec.name, spec.review_by
                ),
            );
        }
    }

    fn integration_id(&self, name: &str) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// Checks one record (already byte-verified) and updates the state.
    pub fn push(&mut self, rec: &Record) {
        let index = rec.index;
        let now = rec.timestamp_ms / 1000;
        let actor = Actor::parse(&rec.actor);
        if index > 0
            && !(actor == Actor::System("init")
                && matches!(rec.event, Event::OperatorCertIssued(_)))
        {
            self.init_run = false;
        }
        if actor == Actor::Other {
            self.flag(
                index,
                "actor_format",
                format!(
                    "actor {:?} is not operator:, workload:, enrollment:, acme:, acme-key: or system: followed by a name",
                    rec.actor
                ),
            );
        }
        // Enrollment adjacency: the record after a certificate issued by an
        // enrollment actor must be its EnrollmentUsed.
        let last_cert = self.last_cert.take();
        if let Some(last) = &last_cert {
            let its_use = matches!(&rec.event, Event::EnrollmentUsed(u)
                if u.serial == last.serial && u.integration == last.integration);
            if last.by_enrollment && !its_use {
                self.flag(
                    last.index,
                    "enrollment_cert_without_use",
                    "certificate issued by an enrollment actor is not followed by its enrollment_used".into(),
                );
            }
        }
        match &rec.event {
            Event::Genesis(_) => {
                if !matches!(actor, Actor::System(_)) {
                    self.flag(
                        index,
                        "actor_not_allowed",
                        "genesis must be written by a system: actor".into(),
                    );
                }
            }
            Event::AcmeEabCreated(e) => self.acme_eab_created(index, actor, e),
            Event::AcmeAccountCreated(a) => self.acme_account_created(index, now, actor, a),
            Event::AcmeAccountChanged(c) => self.acme_account_changed(index, actor, c),
            Event::OperatorCertIssued(o) => self.operator_cert(index, actor, o),
            Event::OperatorRequested(r) => {
                self.require_operator(index, actor, "operator_requested");
                if let Actor::Operator(requester) = actor {
                    self.operators.request(index, requester, r);
                }
            }
            Event::OperatorApproved(a) => {
                let approver = match actor {
                    Actor::Operator(name) => Some(name),
                    _ => None,
                };
                for problem in self.operators.approve(approver, a) {
                    self.flag(index, "operator_approval_invalid", problem);
                }
                self.operator_serial(index, &a.serial);
            }
            Event::MonitorTokenCreated(m) => {
                self.require_operator(index, actor, "monitor_token_created");
                if let Some(problem) = self.monitors.create(now, m) {
                    self.flag(index, "monitor_token_invalid", problem);
                }
            }
            Event::MonitorTokenRevoked(m) => {
                self.require_operator(index, actor, "monitor_token_revoked");
                if let Some(problem) = self.monitors.revoke(m) {
                    self.flag(index, "monitor_token_invalid", problem);
                }
            }
            Event::IntegrationRegistered(r) => {
                self.require_operator(index, actor, "integration_registered");
                self.check_review_by(index, now, &r.spec, "registration");
                let name = r.spec.name.clone();
                if self.names.contains_key(&name) {
                    self.flag(
                        index,
                        "integration_name_reused",
                        format!("integration {name:?} was registered before"),
                    );
                } else if r.spec.status != IntegrationStatus::Active {
                    self.flag(
                        index,
                        "status_transition",
                        format!(
                            "integration {name:?} registered with status {:?}",
                            r.spec.status
                        ),
                    );
                }
                if !self.names.contains_key(&name) {
                    let id = self.integrations.len() as u32;
                    if id < NO_INTEGRATION {
                        self.names.insert(name, id);
                        self.integrations.push(Integration {
                            spec: r.spec.clone(),
                            last_change: index,
                        });
                    }
                }
            }
            Event::ChangeRequested(c) => {
                self.require_operator(index, actor, "change_requested");
                match self.integration_id(&c.proposed.name) {
                    None => self.flag(
                        index,
                        "request_unregistered",
                        format!(
                            "change requested for unregistered integration {:?}",
                            c.proposed.name
                        ),
                    ),
                    Some(id)
                        if self.integrations[id as usize].spec.status
                            == IntegrationStatus::Decommissioned =>
                    {
                        self.flag(
                            index,
                            "request_unregistered",
                            format!(
                                "change requested for decommissioned integration {:?}",
                                c.proposed.name
                            ),
                        )
                    }
                    Some(_) => {}
                }
                self.requests.insert(
                    index,
                    Request {
                        proposed: c.proposed.clone(),
                        actor: rec.actor.clone(),
                        approved: false,
                    },
                );
            }
            Event::IntegrationChanged(c) => self.integration_changed(rec, actor, c),
            Event::EnrollmentCreated(e) => {
                self.require_operator(index, actor, "enrollment_created");
                let id = self.integration_id(&e.integration);
                if let Some(why) = self.not_active(&e.integration) {
                    self.flag(
                        index,
                        "enrollment_integration",
                        format!("enrollment for {why}"),
                    );
                }
                let k = self.keyer.key(b"enrollment", &e.token_hash);
                let slot = self.enrollment_info.len() as u32;
                if self.enrollments.insert(k, slot) {
                    self.enrollment_info.push(Enrollment {
                        integration: id.unwrap_or(NO_INTEGRATION),
                        expires_at: e.expires_at,
                        used: false,
                    });
                } else {
                    self.flag(
                        index,
                        "enrollment_duplicate",
                        format!(
                            "enrollment token {} created before",
                            hex::encode(e.token_hash)
                        ),
                    );
                }
            }
            Event::EnrollmentUsed(u) => {
                if actor != Actor::Enrollment(&u.integration) {
                    self.flag(
                        index,
                        "actor_not_allowed",
                        format!(
                            "enrollment_used must be written by enrollment:{}",
                            u.integration
                        ),
                    );
                }
                let id = self
                    .integration_id(&u.integration)
                    .unwrap_or(NO_INTEGRATION);
                let k = self.keyer.key(b"enrollment", &u.token_hash);
                let slot = self.enrollments.get(&k).map(|i| i as usize);
                match slot.and_then(|i| self.enrollment_info.get_mut(i)) {
                    None => self.flag(
                        index,
                        "enrollment_unknown",
                        format!(
                            "enrollment token {} was never created",
                            hex::encode(u.token_hash)
                        ),
                    ),
                    Some(e) if e.integration != id => self.flag(
                        index,
                        "enrollment_unknown",
                        format!(
                            "enrollment token {} was created for another integration",
                            hex::encode(u.token_hash)
                        ),
                    ),
                    Some(e) => {
                        let (used, expires) = (e.used, e.expires_at);
                        e.used = true;
                        if used {
                            self.flag(
                                index,
                                "enrollment_reused",
                                format!(
                                    "enrollment token {} used before",
                                    hex::encode(u.token_hash)
                                ),
                            );
                        }
                        if now > expires {
                            self.flag(
                                index,
                                "enrollment_expired",
                                format!("enrollment token used at {now}, expired at {expires}"),
                            );
                        }
                    }
                }
                let adjacent = last_cert.as_ref().is_some_and(|l| {
                    l.index + 1 == index && l.serial == u.serial && l.integration == u.integration
                });
                if !adjacent {
                    self.flag(
                        index,
                        "enrollment_not_adjacent",
                        format!(
                            "the previous record is not the certificate {} issued to {:?}",
                            hex::encode(&u.serial),
                            u.integration
                        ),
                    );
                }
            }
            Event::CertificateIssued(c) => {
                let owner = self
                    .integration_id(&c.integration)
                    .unwrap_or(NO_INTEGRATION);
                if !self
                    .serials
                    .insert(self.keyer.key(b"serial", &c.serial), owner)
                {
                    self.flag(
                        index,
                        "serial_duplicate",
                        format!("serial {} issued before", hex::encode(&c.serial)),
                    );
                }
                self.issuer_actor(index, actor, CredKind::Certificate, &c.integration);
                if c.not_after < c.not_before {
                    self.flag(
                        index,
                        "validity_order",
                        format!(
                            "not_after {} is before not_before {}",
                            c.not_after, c.not_before
                        ),
                    );
                }
                if let Some(id) = self.issuable(index, now, &c.integration) {
                    let ttl = c.not_after.saturating_sub(c.not_before);
                    let max = self.integrations[id as usize]
                        .spec
                        .max_ttl_secs
                        .saturating_add(CERT_BACKDATE_SECS);
                    if ttl > max {
                        self.flag(
                            index,
                            "ttl_exceeded",
                            format!(
                                "certificate validity {ttl}s exceeds {}s + {CERT_BACKDATE_SECS}s",
                                max - CERT_BACKDATE_SECS
                            ),
                        );
                    }
                }
                self.last_cert = Some(LastCert {
                    index,
                    serial: c.serial.clone(),
                    integration: c.integration.clone(),
                    by_enrollment: matches!(actor, Actor::Enrollment(_)),
                });
            }
            Event::TokenIssued(t) => {
                let owner = self
                    .integration_id(&t.integration)
                    .unwrap_or(NO_INTEGRATION);
                if !self
                    .jtis
                    .insert(self.keyer.key(b"jti", t.jti.as_bytes()), owner)
                {
                    self.flag(
                        index,
                        "jti_duplicate",
                        format!("jti {:?} issued before", t.jti),
                    );
                }
                self.issuer_actor(index, actor, CredKind::Token, &t.integration);
                if t.expires_at < t.issued_at {
                    self.flag(
                        index,
                        "validity_order",
                        format!(
                            "expires_at {} is before issued_at {}",
                            t.expires_at, t.issued_at
                        ),
                    );
                }
                if let Some(id) = self.issuable(index, now, &t.integration) {
                    let spec = &self.integrations[id as usize].spec;
                    let ttl = t.expires_at.saturating_sub(t.issued_at);
                    let max = spec.max_ttl_secs;
                    let extra = t.scopes.iter().find(|s| !spec.scopes.contains(s)).cloned();
                    if ttl > max {
                        self.flag(
                            index,
                            "ttl_exceeded",
                            format!("token lifetime {ttl}s exceeds {max}s"),
                        );
                    } else if let Some(s) = extra {
                        self.flag(
                            index,
                            "token_scope",
                            format!("token scope {s:?} is not granted to {:?}", t.integration),
                        );
                    } else if !spec.policy.allows_audience(&t.audience) {
                        self.flag(
                            index,
                            "token_audience",
                            format!(
                                "token audience {:?} is not allowed for {:?}",
                                t.audience, t.integration
                            ),
                        );
                    }
                }
            }
            Event::Revoked(r) => self.revoke(
                index,
                actor,
                Revocation::Certificate {
                    serial: &r.serial,
                    reason: r.reason,
                },
            ),
            Event::TokenRevoked(r) => self.revoke(index, actor, Revocation::Token { jti: &r.jti }),
            Event::KeyRotated(_) => {
                if !matches!(actor, Actor::System(_)) {
                    self.require_operator(index, actor, "key_rotated");
                }
            }
            // Written by `credmint ca import` on the appliance itself, never over the API.
            Event::CaImported(_) => {
                if !matches!(actor, Actor::System(_)) {
                    self.flag(
                        index,
                        "actor_not_allowed",
                        "ca_imported must be written by a system: actor".into(),
                    );
                }
            }
            // Signals: any well-formed actor (normally system:*).
            Event::ReuseDetected(_) | Event::AnomalyFlagged(_) => {}
        }
    }

    /// OperatorCertIssued: after the init run only a self-renewal is legal; a certificate
    /// for a new name skips the request/approval pair, and one for another existing
    /// operator hands its name to a key the issuer chose. Either way the issuer is recorded
    /// as both requester and approver, so the puppet cannot approve the issuer's requests.
    fn operator_cert(&mut self, index: u64, actor: Actor<'_>, o: &OperatorCertIssued) {
        let init = self.init_run && index > 0;
        if !init {
            self.require_operator(index, actor, "operator_cert_issued");
            let renewal = actor == Actor::Operator(&o.name);
            if !renewal {
                let what = if self.operators.is_known(&o.name) {
                    "another existing operator"
                } else {
                    "a new operator"
                };
                self.flag(
                    index,
                    "operator_minted_without_approval",
                    format!(
                        "operator certificate for {what} {:?} without an operator_requested / operator_approved pair",
                        o.name
                    ),
                );
            }
        }
        let lineage = match actor {
            Actor::Operator(by) if !init => Some(Lineage {
                requested_by: by.to_owned(),
                approved_by: by.to_owned(),
            }),
            _ => None,
        };
        self.operators.add(&o.name, lineage);
        self.operator_serial(index, &o.serial);
    }

    /// Operator certificate serials share the one serial space (`serial_duplicate`).
    fn operator_serial(&mut self, index: u64, serial: &[u8]) {
        if !self
            .serials
            .insert(self.keyer.key(b"serial", serial), NO_INTEGRATION)
        {
            self.flag(
                index,
                "serial_duplicate",
                format!("serial {} issued before", hex::encode(serial)),
            );
        }
    }

    /// Governance actors: `operator:<name>` with an earlier operator certificate.
    fn require_operator(&mut self, index: u64, actor: Actor<'_>, kind: &str) {
        match actor {
            Actor::Operator(name) if self.operators.is_known(name) => {}
            Actor::Operator(name) => self.flag(
                index,
                "unknown_operator",
                format!("{kind} by operator {name:?}, who has no operator certificate"),
            ),
            _ => self.flag(
                index,
                "actor_not_allowed",
                format!("{kind} must be written by an operator: actor"),
            ),
        }
    }

    /// Issuance actors: the integration's own workload or enrollment, an ACME account bound
    /// to it (certificates only: ACME issues nothing else), or a known operator.
    fn issuer_actor(&mut self, index: u64, actor: Actor<'_>, kind: CredKind, integration: &str) {
        match actor {
            Actor::Workload(x) | Actor::Enrollment(x) if x == integration => {}
            Actor::Workload(x) | Actor::Enrollment(x) => self.flag(
                index,
                "actor_integration",
                format!("actor of integration {x:?} issued a credential of {integration:?}"),
            ),
            Actor::Acme(a) if kind == CredKind::Certificate => {
                match self.acme_acting(index, a) {
                    Some(x) if x != integration => self.flag(
                        index,
                        "actor_integration",
                        format!(
                            "ACME account {a:?} of integration {x:?} issued a certificate of {integration:?}"
                        ),
                    ),
                    _ => {}
                }
            }
            Actor::Operator(_) => self.require_operator(index, actor, "issuance"),
            _ => self.flag(
                index,
                "actor_not_allowed",
                format!("{} are issued by {} actors", kind.plural(), kind.issuers()),
            ),
        }
    }

    /// The integration's id if it may be issued to at `now`; flags why not.
    fn issuable(&mut self, index: u64, now: u64, integration: &str) -> Option<u32> {
        let Some(id) = self.integration_id(integration) else {
            self.flag(
                index,
                "issue_unregistered",
                format!("integration {integration:?} is not registered"),
            );
            return None;
        };
        let spec = &self.integrations[id as usize].spec;
        if spec.status != IntegrationStatus::Active {
            let s = spec.status;
            self.flag(
                index,
                "issue_not_active",
                format!("integration {integration:?} is {s:?}"),
            );
            return None;
        }
        if now > spec.review_by {
            let r = spec.review_by;
            self.flag(
                index,
                "issue_review_overdue",
                format!("issued at {now}, review was due by {r}"),
            );
        }
        Some(id)
    }

    /// A revocation. A certificate revoked as `superseded` may be revoked once more with
    /// another reason.
    fn revoke(&mut self, index: u64, actor: Actor<'_>, target: Revocation<'_>) {
        let (k, what) = match target {
            Revocation::Certificate { serial, .. } => (
                self.keyer.key(b"serial", serial),
                format!("serial {}", hex::encode(serial)),
            ),
            Revocation::Token { jti } => (
                self.keyer.key(b"jti", jti.as_bytes()),
                format!("jti {jti:?}"),
            ),
        };
        let (unknown, twice, reason, set) = match target {
            Revocation::Certificate { reason, .. } => (
                "revoke_unknown",
                "revoke_twice",
                Some(reason),
                &mut self.serials,
            ),
            Revocation::Token { .. } => (
                "token_revoke_unknown",
                "token_revoke_twice",
                None,
                &mut self.jtis,
            ),
        };
        let Some(was) = set.get(&k) else {
            self.flag(index, unknown, format!("{what} was never issued"));
            self.revoker_actor(index, actor, target, None, &what);
            return;
        };
        let superseded = reason == Some(REASON_SUPERSEDED);
        let upgrade = was & SUPERSEDED != 0 && !superseded;
        let owner = was & !(REVOKED | SUPERSEDED);
        set.set(
            &k,
            owner
                | REVOKED
                | if superseded && was & REVOKED == 0 {
                    SUPERSEDED
                } else {
                    0
                },
        );
        if was & REVOKED != 0 && !upgrade {
            self.flag(index, twice, format!("{what} was revoked before"));
        }
        self.revoker_actor(index, actor, target, Some(owner), &what);
    }

    /// Revocation actors (FORMAT.md §13.1): a known operator; `system:*`; the credential's
    /// own workload; for a certificate also an ACME account of its integration, or whoever
    /// proves possession of its key (`acme-key:` followed by exactly its serial in
    /// lowercase hex). `owner` is the credential's integration id, `None` when it was never
    /// issued: then only who the actor is gets checked (`revoke_unknown` says the rest).
    fn revoker_actor(
        &mut self,
        index: u64,
        actor: Actor<'_>,
        target: Revocation<'_>,
        owner: Option<u32>,
        what: &str,
    ) {
        match (actor, target, owner) {
            (Actor::Operator(_), _, _) => self.require_operator(index, actor, "revocation"),
            (Actor::Acme(a), Revocation::Certificate { .. }, _) => {
                if let (Some(x), Some(owner)) = (self.acme_acting(index, a), owner) {
                    let detail = format!(
                        "ACME account {a:?} of integration {x:?} revoked {what}, which is not its integration's"
                    );
                    self.revoker_owns(index, &x, owner, detail);
                }
            }
            (_, _, None) | (Actor::System(_), _, _) => {}
            (Actor::Workload(x), _, Some(owner)) => {
                let detail = format!("workload {x:?} revoked {what}, which is not its own");
                self.revoker_owns(index, x, owner, detail);
            }
            (Actor::AcmeKey(h), Revocation::Certificate { serial, .. }, _) => {
                if h != hex::encode(serial) {
                    self.flag(
                        index,
                        "actor_integration",
                        format!("acme-key:{h} proves the key of another certificate than {what}"),
                    );
                }
            }
            (_, target, _) => self.flag(
                index,
                "actor_not_allowed",
                format!(
                    "{} are revoked by {} actors",
                    target.plural(),
                    target.revokers()
                ),
            ),
        }
    }

    /// `actor_integration` unless integration `x` is the credential's owner.
    fn revoker_owns(&mut self, index: u64, x: &str, owner: u32, detail: String) {
        if self.integration_id(x) != Some(owner) {
            self.flag(index, "actor_integration", detail);
        }
    }

    /// Why `name` is not registered and Active (what an enrollment token, an EAB key or an
    /// ACME account must be made for), if it is not.
    fn not_active(&self, name: &str) -> Option<String> {
        let id = self.integration_id(name);
        match id.map(|id| self.integrations[id as usize].spec.status) {
            None => Some(format!("unregistered integration {name:?}")),
            Some(IntegrationStatus::Active) => None,
            Some(s) => Some(format!("integration {name:?} with status {s:?}")),
        }
    }

    /// Why the registered integration `name` may not be issued to at `now` for its review
    /// being overdue, if it is.
    fn review_overdue(&self, now: u64, name: &str) -> Option<String> {
        let spec = &self.integrations[self.integration_id(name)? as usize].spec;
        (now > spec.review_by).then(|| {
            format!(
                "integration {name:?} whose review was due by {}",
                spec.review_by
            )
        })
    }

    fn flag_all(&mut self, index: u64, problems: impl IntoIterator<Item = Problem>) {
        for (rule, detail) in problems {
            self.flag(index, rule, detail);
        }
    }

    /// The integration of the ACME account `a` acting as `acme:<a>` (none if it was never
    /// created); flags `acme_account_unknown` / `acme_account_deactivated`.
    fn acme_acting(&mut self, index: u64, a: &str) -> Option<String> {
        let acting = self.acme.acting(a);
        self.flag_all(index, acting.problem);
        acting.integration
    }

    /// AcmeEabCreated (§13.7): an operator gives an Active integration the means to bind
    /// one ACME account.
    fn acme_eab_created(&mut self, index: u64, actor: Actor<'_>, e: &AcmeEabCreated) {
        self.require_operator(index, actor, "acme_eab_created");
        if let Some(why) = self.not_active(&e.integration) {
            self.flag(
                index,
                "acme_eab_integration",
                format!("EAB key {:?} for {why}", e.kid),
            );
        }
        let problem = self.acme.eab_created(e);
        self.flag_all(index, problem);
    }

    /// AcmeAccountCreated (§13.7): written by the new account itself (`acme:<account>`),
    /// for an integration that may be issued to now (Active, review not overdue): an
    /// account is a standing credential, so it is held to the issuance conditions.
    fn acme_account_created(
        &mut self,
        index: u64,
        now: u64,
        actor: Actor<'_>,
        a: &AcmeAccountCreated,
    ) {
        if actor != Actor::Acme(&a.account) {
            self.flag(
                index,
                "actor_not_allowed",
                format!("acme_account_created must be written by acme:{}", a.account),
            );
        }
        let why = self
            .not_active(&a.integration)
            .or_else(|| self.review_overdue(now, &a.integration));
        if let Some(why) = why {
            self.flag(
                index,
                "acme_account_integration",
                format!("ACME account {:?} for {why}", a.account),
            );
        }
        let problems = self.acme.account_created(now, a);
        self.flag_all(index, problems);
    }

    /// AcmeAccountChanged (§13.7): a key rollover is written by the account itself; a
    /// deactivation by the account or by a known operator.
    fn acme_account_changed(&mut self, index: u64, actor: Actor<'_>, c: &AcmeAccountChanged) {
        let deactivation = c.change == AcmeAccountChange::Deactivated;
        let (what, or_operator) = if deactivation {
            ("deactivation", " or a known operator")
        } else {
            ("key change", "")
        };
        match actor {
            Actor::Operator(_) if deactivation => {
                self.require_operator(index, actor, "ACME account deactivation");
            }
            _ if actor == Actor::Acme(&c.account) => {}
            _ => self.flag(
                index,
                "actor_not_allowed",
                format!(
                    "a {what} of ACME account {:?} must be written by acme:{}{or_operator}",
                    c.account, c.account
                ),
            ),
        }
        let problems = self.acme.account_changed(c);
        self.flag_all(index, problems);
    }

    /// [`crate::governance::may_approve`] between two actor strings; identical actors of
    /// any class count as self-approval.
    fn independence(&self, approver: &str, requester: &str) -> Option<ApprovalRefusal> {
        match (Actor::parse(approver), Actor::parse(requester)) {
            (Actor::Operator(a), Actor::Operator(r)) => self.operators.may_approve(a, r).err(),
            _ if approver == requester => Some(ApprovalRefusal::SelfApproval {
                operator: approver.to_owned(),
            }),
            _ => None,
        }
    }

    fn integration_changed(
        &mut self,
        rec: &Record,
        actor: Actor<'_>,
        c: &crate::event::IntegrationChanged,
    ) {
        let index = rec.index;
        if !(c.kind == ChangeKind::Suspended && matches!(actor, Actor::System(_))) {
            self.require_operator(index, actor, "integration_changed");
        }
        let Some(id) = self.integration_id(&c.spec.name) else {
            self.flag(
                index,
                "change_unregistered",
                format!("change of unregistered integration {:?}", c.spec.name),
            );
            return;
        };
        let old = self.integrations[id as usize].spec.clone();
        if old.status == IntegrationStatus::Decommissioned {
            self.flag(
                index,
                "change_decommissioned",
                format!("change of decommissioned integration {:?}", c.spec.name),
            );
            return;
        }
        let new = &c.spec;
        if c.kind == ChangeKind::Recertified {
            self.check_review_by(index, rec.timestamp_ms / 1000, new, "recertification");
        }
        let expected_status = match c.kind {
            ChangeKind::Suspended => IntegrationStatus::Suspended,
            ChangeKind::Resumed => IntegrationStatus::Active,
            ChangeKind::Decommissioned => IntegrationStatus::Decommissioned,
            _ => old.status,
        };
        if new.status != expected_status
            || (c.kind == ChangeKind::Resumed && old.status != IntegrationStatus::Suspended)
        {
            self.flag(
                index,
                "status_transition",
                format!(
                    "{:?} change from {:?} to {:?}",
                    c.kind, old.status, new.status
                ),
            );
        }
        if c.kind == ChangeKind::IncreaseApproved {
            let last_change = self.integrations[id as usize].last_change;
            self.approval(rec, c.request_index, new, last_change);
        } else if let Some(why) = increases_authority(&old, new) {
            self.flag(
                index,
                "authority_increase_unapproved",
                format!("{:?} change of {:?} {why}", c.kind, new.name),
            );
        }
        let state = &mut self.integrations[id as usize];
        state.spec = new.clone();
        state.last_change = index;
    }

    fn approval(
        &mut self,
        rec: &Record,
        request_index: u64,
        new: &IntegrationSpec,
        last_change: u64,
    ) {
        let index = rec.index;
        let Some(req) = self.requests.get_mut(&request_index) else {
            self.flag(
                index,
                "approval_no_request",
                format!("request_index {request_index} is not an earlier change_requested"),
            );
            return;
        };
        let mismatch = req.proposed != *new;
        let requester = req.actor.clone();
        let reused = req.approved;
        req.approved = true;
        let superseded = last_change > request_index;
        if superseded {
            self.flag(
                index,
                "approval_superseded",
                format!(
                    "request {request_index} was superseded by the change at record {last_change}"
                ),
            );
        }
        if mismatch {
            self.flag(
                index,
                "approval_mismatch",
                format!("approved state differs from what record {request_index} requested"),
            );
        }
        if let Some(refusal) = self.independence(&rec.actor, &requester) {
            self.flag(
                index,
                "approval_same_operator",
                format!("request {request_index}: {refusal}"),
            );
        }
        if reused {
            self.flag(
                index,
                "approval_reused",
                format!("request {request_index} was approved before"),
            );
        }
    }
}
