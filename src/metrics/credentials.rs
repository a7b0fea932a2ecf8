//! Credentials issued and revoked, by the integration's privilege class, counted once
//! their ledger events are committed (a sequencer effect), never on a refused request.

use credmint_ledger::event::PrivilegeClass;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Whose credential: a workload integration of either privilege class, or an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Routine,
    Privileged,
    Operator,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Routine => "routine",
            Class::Privileged => "privileged",
            Class::Operator => "operator",
        }
    }
}

impl From<PrivilegeClass> for Class {
    fn from(c: PrivilegeClass) -> Class {
        match c {
            PrivilegeClass::Routine => Class::Routine,
            PrivilegeClass::Privileged => Class::Privileged,
        }
    }
}

/// What a committed command did to one credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tallied {
    /// A certificate issued against a one-time enrollment token.
    Enrollment,
    /// A certificate issued to a workload presenting its current one.
    Renewal,
    Token,
    CertificateRevoked,
    TokenRevoked,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByClass {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Revocation {
    class: &'static str,
    credential: &'static str,
}

#[derive(Clone)]
pub struct CredentialMetrics {
    enrollments: Family<ByClass, Counter>,
    renewals: Family<ByClass, Counter>,
    tokens: Family<ByClass, Counter>,
    revocations: Family<Revocation, Counter>,
}

impl CredentialMetrics {
    pub(super) fn register(registry: &mut Registry) -> CredentialMetrics {
        let m = CredentialMetrics {
            enrollments: Family::default(),
            renewals: Family::default(),
            tokens: Family::default(),
            revocations: Family::default(),
        };
        registry.register(
            "certificates_issued",
            "Workload certificates issued at enrollment (one-time token), by privilege class",
            m.enrollments.clone(),
        );
        registry.register(
            "certificates_renewed",
            "Workload certificates issued by renewal, by privilege class",
            m.renewals.clone(),
        );
        registry.register(
            "tokens_issued",
            "Bearer tokens (JWT) issued, by privilege class",
            m.tokens.clone(),
        );
        registry.register(
            "revocations",
            "Credentials revoked, by privilege class and credential (certificate, token)",
            m.revocations.clone(),
        );
        m
    }

    /// Counts one committed issuance or revocation.
    pub fn tally(&self, what: Tallied, class: Class) {
        let class = class.label();
        let by = ByClass { class };
        match what {
            Tallied::Enrollment => self.enrollments.get_or_create(&by).inc(),
            Tallied::Renewal => self.renewals.get_or_create(&by).inc(),
            Tallied::Token => self.tokens.get_or_create(&by).inc(),
            Tallied::CertificateRevoked => self.revoked(class, "certificate"),
            Tallied::TokenRevoked => self.revoked(class, "token"),
        };
    }

    fn revoked(&self, class: &'static str, credential: &'static str) -> u64 {
        self.revocations
            .get_or_create(&Revocation { class, credential })
            .inc()
    }
}
