//! Blast-radius queries over a verified bundle (FORMAT.md §14.2): which
//! credentials were issued under an integration, an approval reference, a
//! signing key or an operator, and what their status is now.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::time::format_rfc3339;
use crate::event::{Event, KeyRole};
use crate::keys::KeyRing;
use crate::record::Record;
use crate::verify::semantic::{cred_key, Actor};

/// What to select; every given criterion must match.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    /// Credentials of this integration.
    pub integration: Option<String>,
    /// Issued while this approval reference was in force for the integration.
    pub approval_ref: Option<String>,
    /// Signed by the key whose SPKI SHA-256 starts with this (lowercase hex).
    pub key_prefix: Option<String>,
    /// Issued under this operator (see [`QueryCollector`]).
    pub operator: Option<String>,
    /// Issued at or after this Unix time.
    pub since: Option<u64>,
}

/// One credential and its status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Credential {
    /// `certificate`, `token` or `operator_certificate`.
    pub kind: &'static str,
    /// Serial (hex) or jti.
    pub id: String,
    /// Integration ("" for operator certificates).
    pub integration: String,
    /// Subject (SPIFFE ID), or the operator's name.
    pub subject: String,
    /// Record index of the issuance.
    pub issued_index: u64,
    /// Record time of the issuance.
    pub issued_at: String,
    /// Unix seconds of the end of validity.
    pub expires_at_unix: u64,
    /// End of validity.
    pub expires_at: String,
    /// `live`, `expired` or `revoked` as of the query time.
    pub status: &'static str,
    /// Record index of the revocation, if revoked.
    pub revoked_index: Option<u64>,
    /// Time of the revocation.
    pub revoked_at: Option<String>,
    /// SPKI SHA-256 of the signing key (CA key in force, or the token key), hex.
    pub signing_key: String,
    /// The integration's approval reference when it was issued.
    pub approval_ref: String,
    /// Who caused the issuance (record actor).
    pub actor: String,
    /// Operator who created the enrollment token it was issued through, or the EAB key
    /// that bound the ACME account that obtained it (the one-time means of getting in).
    pub enrollment_creator: Option<String>,
    /// For an operator certificate minted under dual control: the operator who requested it
    /// (`actor` is then the approver).
    pub requested_by: Option<String>,
    #[serde(skip)]
    revoked_ms: Option<u64>,
}

/// The fields of an operator certificate both issuance events carry.
struct OperatorCert<'a> {
    name: &'a str,
    serial: &'a [u8],
    not_after: u64,
    approval_ref: String,
    requested_by: Option<String>,
}

#[derive(Debug, Default)]
struct IntegrationInfo {
    approval_ref: String,
    last_reference: String,
    operators: BTreeSet<String>,
}

/// Collects matching credentials from the verified record stream.
///
/// "Issued under operator O" means: a certificate or token of an integration
/// that O registered, changed, requested a change of or approved before the
/// issuance; a certificate issued through an enrollment token O created, or by an
/// ACME account bound with an EAB key O created; or an operator certificate issued to,
/// by, or on the request of O.
#[derive(Debug)]
pub struct QueryCollector {
    filter: QueryFilter,
    integrations: HashMap<String, IntegrationInfo>,
    enrollment_creators: HashMap<[u8; 16], String>,
    /// EAB key ids the filter's operator created, and the ACME accounts they bound
    /// (accounts are few: plain sets).
    operator_eab_keys: HashSet<String>,
    operator_accounts: HashSet<String>,
    results: Vec<Credential>,
    by_key: HashMap<[u8; 16], usize>,
    /// A certificate that matched everything but the operator, awaiting its EnrollmentUsed.
    pending: Option<(Credential, [u8; 16])>,
    /// The last certificate pushed (its EnrollmentUsed names the creator).
    last_pushed: Option<usize>,
    /// Operator requests by index: (requesting operator, approval_ref).
    operator_requests: HashMap<u64, (String, String)>,
}

impl QueryCollector {
    /// A collector for `filter`.
    pub fn new(filter: QueryFilter) -> Self {
        QueryCollector {
            filter,
            integrations: HashMap::new(),
            enrollment_creators: HashMap::new(),
            operator_eab_keys: HashSet::new(),
            operator_accounts: HashSet::new(),
            results: Vec::new(),
            by_key: HashMap::new(),
            pending: None,
            last_pushed: None,
            operator_requests: HashMap::new(),
        }
    }

    fn operator_touched(&mut self, integration: &str, actor: &str) {
        if let Actor::Operator(name) = Actor::parse(actor) {
            self.integrations
                .entry(integration.to_owned())
                .or_default()
                .operators
                .insert(name.to_owned());
        }
    }

    /// Feeds one verified record and the keys in force after it.
    pub fn push(&mut self, rec: &Record, keys: &KeyRing) {
        let pending = self.pending.take();
        let last_pushed = self.last_pushed.take();
        let secs = rec.timestamp_ms / 1000;
        match &rec.event {
            Event::IntegrationRegistered(r) => {
                let info = self.integrations.entry(r.spec.name.clone()).or_default();
                info.approval_ref.clone_from(&r.spec.approval_ref);
                self.operator_touched(&r.spec.name, &rec.actor);
            }
            Event::IntegrationChanged(c) => {
                let info = self.integrations.entry(c.spec.name.clone()).or_default();
                info.approval_ref.clone_from(&c.spec.approval_ref);
                info.last_reference.clone_from(&c.reference);
                self.operator_touched(&c.spec.name, &rec.actor);
            }
            Event::ChangeRequested(c) => self.operator_touched(&c.proposed.name, &rec.actor),
            Event::EnrollmentCreated(e) => {
                if let Actor::Operator(name) = Actor::parse(&rec.actor) {
                    if self.filter.operator.as_deref() == Some(name) {
                        self.enrollment_creators
                            .insert(cred_key(b"enrollment", &e.token_hash), name.to_owned());
                    }
                }
            }
            Event::AcmeEabCreated(e) => {
                if let Actor::Operator(name) = Actor::parse(&rec.actor) {
                    if self.filter.operator.as_deref() == Some(name) {
                        self.operator_eab_keys.insert(e.kid.clone());
                    }
                }
            }
            Event::AcmeAccountCreated(a) if self.operator_eab_keys.contains(&a.eab_kid) => {
                self.operator_accounts.insert(a.account.clone());
            }
            Event::EnrollmentUsed(u) => {
                let creator = self
                    .enrollment_creators
                    .get(&cred_key(b"enrollment", &u.token_hash))
                    .cloned();
                let serial_key = cred_key(b"serial", &u.serial);
                if let Some(i) = last_pushed {
                    if self.by_key.get(&serial_key) == Some(&i) {
                        self.results[i].enrollment_creator.clone_from(&creator);
                    }
                }
                if let (Some((mut cred, k)), Some(c)) = (pending, creator) {
                    if k == serial_key {
                        cred.enrollment_creator = Some(c);
                        self.add(cred, k);
                    }
                }
            }
            Event::CertificateIssued(c) => {
                let ca = keys
                    .current(KeyRole::Ca)
                    .map(|k| k.fingerprint())
                    .unwrap_or_default();
                let info = self.integrations.get(&c.integration);
                let cred = Credential {
                    kind: "certificate",
                    id: hex::encode(&c.serial),
                    integration: c.integration.clone(),
                    subject: c.subject.clone(),
                    issued_index: rec.index,
                    issued_at: format_rfc3339(secs),
                    expires_at_unix: c.not_after,
                    expires_at: format_rfc3339(c.not_after),
                    status: "live",
                    revoked_index: None,
                    revoked_at: None,
                    signing_key: hex::encode(ca),
                    approval_ref: info.map(|i| i.approval_ref.clone()).unwrap_or_default(),
                    actor: rec.actor.clone(),
                    enrollment_creator: self.acme_creator(&rec.actor),
                    requested_by: None,
                    revoked_ms: None,
                };
                let k = cred_key(b"serial", &c.serial);
                match self.matches(&cred, secs) {
                    Match::Yes => self.add(cred, k),
                    Match::AllButOperator
                        if matches!(Actor::parse(&rec.actor), Actor::Enrollment(_)) =>
                    {
                        self.pending = Some((cred, k));
                    }
                    _ => {}
                }
            }
            Event::TokenIssued(t) => {
                let info = self.integrations.get(&t.integration);
                let cred = Credential {
                    kind: "token",
                    id: t.jti.clone(),
                    integration: t.integration.clone(),
                    subject: t.subject.clone(),
                    issued_index: rec.index,
                    issued_at: format_rfc3339(secs),
                    expires_at_unix: t.expires_at,
                    expires_at: format_rfc3339(t.expires_at),
                    status: "live",
                    revoked_index: None,
                    revoked_at: None,
                    signing_key: hex::encode(t.key_fingerprint),
                    approval_ref: info.map(|i| i.approval_ref.clone()).unwrap_or_default(),
                    actor: rec.actor.clone(),
                    enrollment_creator: None,
                    requested_by: None,
                    revoked_ms: None,
                };
                if self.matches(&cred, secs) == Match::Yes {
                    self.add(cred, cred_key(b"jti", t.jti.as_bytes()));
                }
            }
            Event::OperatorCertIssued(o) => {
                let cert = OperatorCert {
                    name: &o.name,
                    serial: &o.serial,
                    not_after: o.not_after,
                    approval_ref: String::new(),
                    requested_by: None,
                };
                self.operator_cert(rec, keys, cert);
            }
            Event::OperatorRequested(r) => {
                if let Actor::Operator(name) = Actor::parse(&rec.actor) {
                    self.operator_requests
                        .insert(rec.index, (name.to_owned(), r.approval_ref.clone()));
                }
            }
            Event::OperatorApproved(a) => {
                let (requested_by, approval_ref) = self
                    .operator_requests
                    .get(&a.request_index)
                    .cloned()
                    .map_or((None, String::new()), |(r, x)| (Some(r), x));
                let cert = OperatorCert {
                    name: &a.name,
                    serial: &a.serial,
                    not_after: a.not_after,
                    approval_ref,
                    requested_by,
                };
                self.operator_cert(rec, keys, cert);
            }
            Event::Revoked(r) => self.revoked(cred_key(b"serial", &r.serial), rec),
            Event::TokenRevoked(r) => self.revoked(cred_key(b"jti", r.jti.as_bytes()), rec),
            _ => {}
        }
    }

    /// The filter's operator, if `actor` is an ACME account bound with an EAB key they
    /// created.
    fn acme_creator(&self, actor: &str) -> Option<String> {
        match Actor::parse(actor) {
            Actor::Acme(a) if self.operator_accounts.contains(a) => self.filter.operator.clone(),
            _ => None,
        }
    }

    /// An operator certificate (direct or approved), signed by the CA key in force.
    fn operator_cert(&mut self, rec: &Record, keys: &KeyRing, o: OperatorCert<'_>) {
        let secs = rec.timestamp_ms / 1000;
        let ca = keys
            .current(KeyRole::Ca)
            .map(|k| k.fingerprint())
            .unwrap_or_default();
        let cred = Credential {
            kind: "operator_certificate",
            id: hex::encode(o.serial),
            integration: String::new(),
            subject: o.name.to_owned(),
            issued_index: rec.index,
            issued_at: format_rfc3339(secs),
            expires_at_unix: o.not_after,
            expires_at: format_rfc3339(o.not_after),
            status: "live",
            revoked_index: None,
            revoked_at: None,
            signing_key: hex::encode(ca),
            approval_ref: o.approval_ref,
            actor: rec.actor.clone(),
            enrollment_creator: None,
            requested_by: o.requested_by,
            revoked_ms: None,
        };
        if self.matches(&cred, secs) == Match::Yes {
            self.add(cred, cred_key(b"serial", o.serial));
        }
    }

    fn add(&mut self, cred: Credential, k: [u8; 16]) {
        self.by_key.insert(k, self.results.len());
        self.last_pushed = Some(self.results.len());
        self.results.push(cred);
    }

    fn revoked(&mut self, k: [u8; 16], rec: &Record) {
        if let Some(&i) = self.by_key.get(&k) {
            let c = &mut self.results[i];
            if c.revoked_index.is_none() {
                c.revoked_index = Some(rec.index);
                c.revoked_at = Some(format_rfc3339(rec.timestamp_ms / 1000));
                c.revoked_ms = Some(rec.timestamp_ms);
            }
        }
    }

    fn matches(&self, c: &Credential, issued_secs: u64) -> Match {
        let f = &self.filter;
        if f.integration.as_ref().is_some_and(|i| *i != c.integration) {
            return Match::No;
        }
        if f.since.is_some_and(|s| issued_secs < s) {
            return Match::No;
        }
        if f.key_prefix
            .as_ref()
            .is_some_and(|p| !c.signing_key.starts_with(p.as_str()))
        {
            return Match::No;
        }
        let info = self.integrations.get(&c.integration);
        if let Some(r) = &f.approval_ref {
            let ok = info.is_some_and(|i| i.approval_ref == *r || i.last_reference == *r);
            if !ok {
                return Match::No;
            }
        }
        if let Some(op) = &f.operator {
            let ok = if c.kind == "operator_certificate" {
                c.subject == *op
                    || Actor::parse(&c.actor) == Actor::Operator(op)
                    || c.requested_by.as_deref() == Some(op.as_str())
            } else {
                info.is_some_and(|i| i.operators.contains(op))
                    || c.enrollment_creator.as_deref() == Some(op.as_str())
            };
            if !ok {
                return Match::AllButOperator;
            }
        }
        Match::Yes
    }

    /// The matching credentials with their status as of `at_ms` (Unix ms).
    pub fn finish(mut self, at_ms: u64) -> Vec<Credential> {
        let at = at_ms / 1000;
        for c in &mut self.results {
            c.status = match c.revoked_ms {
                Some(ms) if ms <= at_ms => "revoked",
                _ if at > c.expires_at_unix => "expired",
                _ => "live",
            };
            if c.status != "revoked" {
                c.revoked_index = None;
                c.revoked_at = None;
            }
        }
        self.results
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    AllButOperator,
    No,
}

/// A fixed-width table of credentials.
pub fn render_table(creds: &[Credential]) -> String {
    let mut out = format!(
        "{:<20} {:<34} {:<20} {:<20} {:<20} {:<8} {:<12} {}\n",
        "KIND", "ID", "INTEGRATION", "ISSUED", "EXPIRES", "STATUS", "SIGNING KEY", "APPROVAL"
    );
    for c in creds {
        let id = if c.id.chars().count() > 34 {
            format!("{}…", c.id.chars().take(33).collect::<String>())
        } else {
            c.id.clone()
        };
        out.push_str(&format!(
            "{:<20} {:<34} {:<20} {:<20} {:<20} {:<8} {:<12} {}\n",
            c.kind,
            id,
            c.integration,
            c.issued_at,
            c.expires_at,
            c.status,
            c.signing_key.get(..12).unwrap_or(""),
            c.approval_ref
        ));
    }
    let count = |s: &str| creds.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} credentials: {} live, {} expired, {} revoked\n",
        creds.len(),
        count("live"),
        count("expired"),
        count("revoked")
    ));
    out
}
