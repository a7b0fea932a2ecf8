//! `credmint bench seed`: fills a (stopped) *benchmark* appliance's ledger with synthetic
//! but semantically valid issuance events, so status and OCSP throughput can be measured on
//! a realistically sized ledger. The events go through the same projection code as real
//! ones; the certificates themselves are never signed (nobody will present them).
//!
//! Synthetic issuances of certificates that were never signed must never reach a real
//! appliance's ledger: [`seed`] refuses any ledger whose genesis record is not by
//! [`BENCH_GENESIS_ACTOR`], i.e. not made by `credmint init --benchmark` (a throwaway
//! appliance with its own data directory and token).

use credmint_ledger::event::{
    CertificateIssued, Event, IntegrationRegistered, IntegrationSpec, IntegrationStatus,
    PrivilegeClass,
};
use credmint_ledger::{Ledger, NewEntry};
use sha2::{Digest, Sha256};

use crate::ca::serial::random_serial;
use crate::init::BENCH_GENESIS_ACTOR;
use crate::registry::{apply, Registry};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("refusing to write benchmark data into ledger {path}: {reason}; `bench seed` only writes into a ledger made by `credmint init --benchmark` (a throwaway appliance with its own data_dir and token)")]
    NotBenchmark { path: String, reason: String },
    #[error("ledger: {0}")]
    Ledger(String),
}

/// Ok when record 0 of `ledger` is a genesis by [`BENCH_GENESIS_ACTOR`].
pub fn check_benchmark_ledger(ledger: &Ledger, path: &str) -> Result<(), SeedError> {
    let not = |reason: String| SeedError::NotBenchmark {
        path: path.into(),
        reason,
    };
    let record = ledger
        .record(0)
        .map_err(|e| SeedError::Ledger(e.to_string()))?
        .ok_or_else(|| not("it has no genesis record".into()))?;
    if !matches!(record.event, Event::Genesis(_)) {
        return Err(not("record 0 is not a genesis event".into()));
    }
    if record.actor != BENCH_GENESIS_ACTOR {
        return Err(not(format!(
            "its genesis is by {:?}, not {BENCH_GENESIS_ACTOR:?}: it is not a benchmark ledger",
            record.actor
        )));
    }
    Ok(())
}

/// Seeds `count` certificates into a benchmark ledger (see the module docs; any other
/// ledger is refused before anything is written); returns (every serial in hex, ledger
/// size after).
pub fn seed(
    ledger: &Ledger,
    path: &str,
    count: u64,
    trust_domain: &str,
) -> Result<(Vec<String>, u64), SeedError> {
    check_benchmark_ledger(ledger, path)?;
    seed_unchecked(ledger, count, trust_domain).map_err(SeedError::Ledger)
}

fn seed_unchecked(
    ledger: &Ledger,
    count: u64,
    trust_domain: &str,
) -> Result<(Vec<String>, u64), String> {
    let name = "bench-seed";
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let ts = |ledger: &Ledger| (now_s * 1000).max(ledger.head_timestamp_ms());
    let registry = Registry::open(ledger).map_err(|e| e.to_string())?;
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
            policy: Default::default(),
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
