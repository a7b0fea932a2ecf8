//! Operator (admin) certificates: client certificates whose serials the ledger records as
//! `operator-cert-issued`, so the admin routes can tell them from workload certificates.

use credmint_ledger::event::{Event, OperatorCertIssued};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::ca::serial::random_serial;
use crate::issue::{Governance, LeafSpec};

/// Validity of operator certificates.
pub const OPERATOR_CERT_DAYS: i64 = 365;

/// `spiffe://<trust-domain>/operator/<name>`.
pub fn operator_id(trust_domain: &str, name: &str) -> String {
    format!("spiffe://{trust_domain}/operator/{name}")
}

/// Ledger actor of an operator.
pub fn operator_actor(name: &str) -> String {
    format!("operator:{name}")
}

pub struct OperatorLeaf {
    pub spec: LeafSpec,
    pub event: Event,
}

/// Leaf spec and ledger event of a new operator certificate for `spki_der`.
pub fn operator_leaf(
    name: &str,
    approval_ref: &str,
    trust_domain: &str,
    status_url: &str,
    ledger_origin: &str,
    spki_der: &[u8],
    now: OffsetDateTime,
) -> OperatorLeaf {
    let spec = LeafSpec {
        serial: random_serial(),
        spiffe_id: operator_id(trust_domain, name),
        dns_names: vec![],
        common_name: None,
        not_before: now - Duration::seconds(crate::issuance::BACKDATE_SECS),
        not_after: now + Duration::days(OPERATOR_CERT_DAYS),
        client_auth: true,
        server_auth: false,
        ocsp_url: format!("{status_url}/ocsp"),
        crl_url: format!("{status_url}/crl"),
        governance: Governance {
            integration: operator_actor(name),
            approval_ref: approval_ref.to_string(),
            ledger_origin: ledger_origin.to_string(),
        },
    };
    let event = Event::OperatorCertIssued(OperatorCertIssued {
        name: name.to_string(),
        serial: spec.serial.to_vec(),
        not_after: u64::try_from(spec.not_after.unix_timestamp()).unwrap_or(0),
        key_fingerprint: Sha256::digest(spki_der).into(),
    });
    OperatorLeaf { spec, event }
}
