//! A ledger with the usual opening (genesis, two operators, one integration)
//! and helpers to append, export and verify.
#![allow(dead_code)]

use credmint_ledger::audit::{
    verify_bundle, AuditOptions, AuditReport, EarlierCheckpoint, Outcome,
};
use credmint_ledger::event::{
    CertificateIssued, Event, Genesis, IntegrationRegistered, IntegrationSpec, IntegrationStatus,
    KeyAlgorithm, KeyInfo, KeyRole, OperatorCertIssued, PrivilegeClass, TokenIssued,
};
use credmint_ledger::export::export_bundle;
use credmint_ledger::{DalekSigner, Ledger, NewEntry, Signer};
use p256::pkcs8::EncodePublicKey as _;

pub const ORIGIN: &str = "audit.credmint.test/ledger";
pub const T0_MS: u64 = 1_800_000_000_000;

pub fn ledger_signer() -> DalekSigner {
    DalekSigner::from_seed([0x21; 32])
}

/// The CA key: ECDSA P-256 (as an HSM would hold), deterministic.
pub fn ca_key(seed: u8) -> p256::ecdsa::SigningKey {
    let mut s = [0x11u8; 32];
    s[31] = seed;
    p256::ecdsa::SigningKey::from_slice(&s).expect("valid scalar")
}

pub fn ca_info(seed: u8) -> KeyInfo {
    let spki = ca_key(seed)
        .verifying_key()
        .to_public_key_der()
        .expect("spki")
        .as_bytes()
        .to_vec();
    KeyInfo {
        role: KeyRole::Ca,
        algorithm: KeyAlgorithm::EcdsaP256,
        label: format!("ca-{seed}"),
        spki_der: spki,
    }
}

pub fn token_signer() -> DalekSigner {
    DalekSigner::from_seed([0x31; 32])
}

pub fn genesis_entry() -> NewEntry {
    NewEntry {
        timestamp_ms: T0_MS,
        actor: "system:init".into(),
        event: Event::Genesis(Genesis {
            origin: ORIGIN.into(),
            keys: vec![
                ca_info(1),
                KeyInfo::ed25519(KeyRole::Token, "token", &token_signer().public_key()),
                KeyInfo::ed25519(KeyRole::Ledger, "ledger", &ledger_signer().public_key()),
            ],
            config_digest: [0x44; 32],
            ca_certificate_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        }),
    }
}

pub fn spec(name: &str) -> IntegrationSpec {
    IntegrationSpec {
        name: name.into(),
        business_owner: "finance".into(),
        technical_owner: "platform".into(),
        purpose: "invoices".into(),
        environment: "prod".into(),
        scopes: vec!["invoices:read".into()],
        privilege_class: PrivilegeClass::Routine,
        max_ttl_secs: 3600,
        review_by: T0_MS / 1000 + 365 * 86_400,
        approval_ref: format!("CHG-{name}"),
        allow_server_auth: false,
        dns_names: vec![],
        status: IntegrationStatus::Active,
        policy: Default::default(),
    }
}

pub fn cert(serial: &[u8], integration: &str, now_s: u64, ttl: u64) -> Event {
    Event::CertificateIssued(CertificateIssued {
        serial: serial.to_vec(),
        integration: integration.into(),
        subject: format!("spiffe://audit.credmint.test/prod/{integration}"),
        not_before: now_s - 30,
        not_after: now_s - 30 + ttl,
        key_fingerprint: [0x55; 32],
    })
}

pub fn token(jti: &str, integration: &str, now_s: u64, ttl: u64) -> Event {
    Event::TokenIssued(TokenIssued {
        jti: jti.into(),
        integration: integration.into(),
        subject: format!("spiffe://audit.credmint.test/prod/{integration}"),
        audience: "api".into(),
        scopes: vec!["invoices:read".into()],
        issued_at: now_s,
        expires_at: now_s + ttl,
        key_fingerprint: KeyInfo::ed25519(KeyRole::Token, "token", &token_signer().public_key())
            .fingerprint(),
    })
}

pub fn operator_cert(name: &str, serial: u8) -> Event {
    Event::OperatorCertIssued(OperatorCertIssued {
        name: name.into(),
        serial: vec![0x0f, serial],
        not_after: T0_MS / 1000 + 365 * 86_400,
        key_fingerprint: [serial; 32],
    })
}

pub struct Fx {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
    pub signer: DalekSigner,
    pub ts: u64,
}

impl Fx {
    /// Genesis only.
    pub fn bare() -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger =
            Ledger::create(&dir.path().join("ledger.redb"), genesis_entry()).expect("create");
        Fx {
            dir,
            ledger,
            signer: ledger_signer(),
            ts: T0_MS,
        }
    }

    /// Genesis, init operators alice and bob (both by system:init, indices 1 and 2),
    /// integration "billing" (by alice): indices 0..=3.
    pub fn new() -> Fx {
        let mut fx = Fx::bare();
        fx.push("system:init", operator_cert("alice", 1));
        fx.push("system:init", operator_cert("bob", 2));
        fx.push(
            "operator:alice",
            Event::IntegrationRegistered(IntegrationRegistered {
                spec: spec("billing"),
            }),
        );
        fx
    }

    pub fn now_s(&self) -> u64 {
        self.ts / 1000
    }

    /// Appends one record one second after the previous; returns its index.
    pub fn push(&mut self, actor: &str, event: Event) -> u64 {
        self.batch(vec![(actor, event)])
    }

    /// Appends records in one batch; returns the first index.
    pub fn batch(&mut self, items: Vec<(&str, Event)>) -> u64 {
        self.ts += 1000;
        let entries = items
            .into_iter()
            .map(|(actor, event)| NewEntry {
                timestamp_ms: self.ts,
                actor: actor.into(),
                event,
            })
            .collect();
        let recs = self.ledger.append_batch(entries).expect("append");
        recs[0].index
    }

    /// Signs a checkpoint of the current size and exports.
    pub fn bundle(&self) -> Vec<u8> {
        self.ledger.sign_checkpoint(&self.signer).expect("sign");
        let mut out = Vec::new();
        export_bundle(&self.ledger, &mut out).expect("export");
        out
    }

    pub fn verify(&self) -> AuditReport {
        verify(&self.bundle(), None)
    }
}

pub fn options(since: Option<&str>) -> AuditOptions {
    AuditOptions {
        ledger_key: ledger_signer().public_key(),
        since: since.map(|t| EarlierCheckpoint::parse(t).expect("earlier checkpoint parses")),
        key_name: None,
        semantic: true,
        review_caps: Default::default(),
    }
}

pub fn verify(bundle: &[u8], since: Option<&str>) -> AuditReport {
    verify_bundle(bundle, &options(since), &mut |_, _| {}, &mut |_, _| {})
}

pub fn verify_with(bundle: &[u8], key: [u8; 32]) -> AuditReport {
    let opts = AuditOptions {
        ledger_key: key,
        since: None,
        key_name: None,
        semantic: true,
        review_caps: Default::default(),
    };
    verify_bundle(bundle, &opts, &mut |_, _| {}, &mut |_, _| {})
}

/// Runs the `credmint-audit` binary: (exit code, stdout, stderr).
pub fn audit(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credmint-audit"))
        .args(args)
        .output()
        .expect("run credmint-audit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `bytes` to `dir/name` and returns the path as a string.
pub fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write test file");
    p.to_string_lossy().into_owned()
}

/// Exports `fx`, runs `credmint-audit verify --json` on it and returns the exit code
/// and the reported violations as (index, rule) pairs.
pub fn audit_verify(fx: &Fx) -> (i32, Vec<(u64, String)>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = write(dir.path(), "b.bundle", &fx.bundle());
    let key = hex::encode(ledger_signer().public_key());
    let (code, out, err) = audit(&["verify", &bundle, "--ledger-key", &key, "--json"]);
    let j: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let violations = j["violations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    (
                        v["index"].as_u64().unwrap_or(u64::MAX),
                        v["rule"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (code, violations)
}

/// Appends `items` (each its own batch) to the standard opening and asserts that no
/// rule fires.
pub fn assert_clean(items: Vec<(&str, Event)>) {
    let mut fx = Fx::new();
    for (actor, ev) in items {
        fx.push(actor, ev);
    }
    let r = fx.verify();
    assert_eq!(r.outcome, Outcome::Verified, "{:#?}", r.violations);
}

/// Appends `items` (each its own batch) to the standard opening and asserts
/// that `rule` fires at the index of the `at`-th appended item.
pub fn assert_fires(items: Vec<(&str, Event)>, at: usize, rule: &str) {
    let mut fx = Fx::new();
    let mut indices = Vec::new();
    for (actor, ev) in items {
        indices.push(fx.push(actor, ev));
    }
    let r = fx.verify();
    assert_eq!(
        r.outcome,
        Outcome::Violations,
        "{rule}: expected a violation, got {:?}",
        r.failure
    );
    assert!(
        r.violations
            .iter()
            .any(|v| v.rule == rule && v.index == indices[at]),
        "{rule} at {}: got {:#?}",
        indices[at],
        r.violations
    );
}
