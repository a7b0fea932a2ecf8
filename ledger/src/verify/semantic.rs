//! Semantic verification: what the records *mean* (FORMAT.md §13), checked
//! record by record after the byte-level checks passed. Every broken rule is
//! a [`SemanticViolation`]; checking goes on, so one run reports them all.
//!
//! Memory is constant except for what the rules need: one 16-byte slot per
//! credential (a 12-byte salted SHA-256 key, a 31-bit integration id and a
//! revoked flag; ~24 bytes per credential with the table's slack) and per
//! enrollment token (plus 16 bytes of expiry and state), the integrations, the
//! operators and the change requests.

use std::collections::HashMap;

use super::compact::{CompactMap, Key, Keyer};
use super::monitors::MonitorBook;
use super::operators::OperatorBook;

use sha2::{Digest, Sha256};

use crate::event::{
    ChangeKind, Event, IntegrationSpec, IntegrationStatus, OperatorCertIssued, PolicyExtensions,
    PrivilegeClass,
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
                    "actor {:?} is not operator:, workload:, enrollment: or system: followed by a name",
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
                match id.map(|id| self.integrations[id as usize].spec.status) {
                    None => self.flag(
                        index,
                        "enrollment_integration",
                        format!(
                            "enrollment for unregistered integration {:?}",
                            e.integration
                        ),
                    ),
                    Some(IntegrationStatus::Active) => {}
                    Some(s) => self.flag(
                        index,
                        "enrollment_integration",
                        format!(
                            "enrollment for integration {:?} with status {s:?}",
                            e.integration
                        ),
                    ),
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
                self.issuer_actor(index, actor, &c.integration);
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
                self.issuer_actor(index, actor, &t.integration);
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
            Event::Revoked(r) => {
                let k = self.keyer.key(b"serial", &r.serial);
                let what = format!("serial {}", hex::encode(&r.serial));
                self.revoke(index, actor, k, Some(r.reason), what);
            }
            Event::TokenRevoked(r) => {
                let k = self.keyer.key(b"jti", r.jti.as_bytes());
                let what = format!("jti {:?}", r.jti);
                self.revoke(index, actor, k, None, what);
            }
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

    /// Issuance actors: the integration's own workload or enrollment, or a known operator.
    fn issuer_actor(&mut self, index: u64, actor: Actor<'_>, integration: &str) {
        match actor {
            Actor::Workload(x) | Actor::Enrollment(x) if x == integration => {}
            Actor::Workload(x) | Actor::Enrollment(x) => self.flag(
                index,
                "actor_integration",
                format!("actor of integration {x:?} issued a credential of {integration:?}"),
            ),
            Actor::Operator(_) => self.require_operator(index, actor, "issuance"),
            _ => self.flag(
                index,
                "actor_not_allowed",
                "credentials are issued by workload:, enrollment: or operator: actors".into(),
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

    /// A revocation; `reason` is a certificate's (`None` for a token). A certificate
    /// revoked as `superseded` may be revoked once more with another reason.
    fn revoke(&mut self, index: u64, actor: Actor<'_>, k: Key, reason: Option<u8>, what: String) {
        let token = reason.is_none();
        let (unknown, twice) = if token {
            ("token_revoke_unknown", "token_revoke_twice")
        } else {
            ("revoke_unknown", "revoke_twice")
        };
        let set = if token {
            &mut self.jtis
        } else {
            &mut self.serials
        };
        let Some(was) = set.get(&k) else {
            self.flag(index, unknown, format!("{what} was never issued"));
            if matches!(actor, Actor::Operator(_)) {
                self.require_operator(index, actor, "revocation");
            }
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
        match actor {
            Actor::Operator(_) => self.require_operator(index, actor, "revocation"),
            Actor::Workload(x) => {
                let own = self.integration_id(x);
                if own != Some(owner) {
                    self.flag(
                        index,
                        "actor_integration",
                        format!("workload {x:?} revoked {what}, which is not its own"),
                    );
                }
            }
            Actor::System(_) => {}
            _ => self.flag(
                index,
                "actor_not_allowed",
                "revocations are written by operator:, workload: or system: actors".into(),
            ),
        }
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
