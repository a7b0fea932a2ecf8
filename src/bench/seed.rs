//! `credmint bench seed`: fills a (stopped) appliance's ledger with synthetic but
//! semantically valid issuance events, so status and OCSP throughput can be measured on a
//! realistically sized ledger. The events go through the same projection code as real
//! ones; the certificates themselves are never signed (nobody will present them).

use credmint_ledger::event::{
    CertificateIssued, Event, IntegrationRegistered, IntegrationSpec, IntegrationStatus,
    PrivilegeClass,
};
use credmint_ledger::{Ledger, NewEntry};
use sha2::{Digest, Sha256};

use crate::ca::serial::random_serial;
use crate::registry::{apply, Registry};

/// Seeds `count` certificates; returns (every serial in hex, ledger size after).
pub fn seed(ledger: &Ledger, count: u64, trust_domain: &str) -> Result<(Vec<String>, u64), String> {
    let name = "bench-seed";
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let ts = |ledger: &Ledger| (now_s * 1000).max(ledger.head_timestamp_ms());
    let registry = Registry::open(ledger.database()).map_err(|e| e.to_string())?;
    if registry
        .integration(name)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        let spec = IntegrationSpec {
            name: name.into(),
            business_owner: "bench".into(),
            technical_owner: "bench".into(),
            purpose: "status throughput benchmark".into(),
            environment: "bench".into(),
            scopes: vec!["bench".into()],
            privilege_class: PrivilegeClass::Routine,
            max_ttl_secs: 3600,
            review_by: now_s + 30 * 86_400,
            approval_ref: "bench".into(),
            allow_server_auth: false,
            dns_names: vec![],
            status: IntegrationStatus::Active,
        };
        ledger
            .append_batch_with(
                vec![NewEntry {
                    timestamp_ms: ts(ledger),
                    actor: "operator:admin".into(),
                    event: Event::IntegrationRegistered(IntegrationRegistered { spec }),
                }],
                apply,
            )
            .map_err(|e| e.to_string())?;
    }
    drop(registry);
    let subject = format!("spiffe://{trust_domain}/bench/{name}");
    let mut serials = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut done = 0;
    while done < count {
        let n = (count - done).min(2000);
        let at = ts(ledger);
        let entries: Vec<NewEntry> = (0..n)
            .map(|i| {
                let serial = random_serial().to_vec();
                serials.push(hex::encode(&serial));
                NewEntry {
                    timestamp_ms: at,
                    actor: "workload:bench-seed".into(),
                    event: Event::CertificateIssued(CertificateIssued {
                        serial,
                        integration: name.into(),
                        subject: subject.clone(),
                        not_before: at / 1000 - 30,
                        not_after: at / 1000 + 3600,
                        key_fingerprint: Sha256::digest((done + i).to_be_bytes()).into(),
                    }),
                }
            })
            .collect();
        ledger
            .append_batch_with(entries, apply)
            .map_err(|e| e.to_string())?;
        done += n;
    }
    Ok((serials, ledger.size()))
}
