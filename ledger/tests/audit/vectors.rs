//! The checked-in bundle test vector (`testdata/small.bundle`, FORMAT.md
//! §12.4): rebuilt here from fixed inputs, compared byte for byte with the
//! file, verified, and every hash FORMAT.md lists is recomputed. Regenerate
//! with `CREDMINT_REGEN_VECTORS=1 cargo test -p credmint-ledger --test audit vectors -- --nocapture`.

use credmint_ledger::audit::Outcome;
use credmint_ledger::checkpoint::Checkpoint;
use credmint_ledger::event::{
    CertificateIssued, Event, Genesis, IntegrationRegistered, IntegrationSpec, IntegrationStatus,
    KeyInfo, KeyRole, OperatorCertIssued, PrivilegeClass, Revoked,
};
use credmint_ledger::export::BundleWriter;
use credmint_ledger::merkle::{leaf_hash, Frontier};
use credmint_ledger::note::verifier_key_string;
use credmint_ledger::record::{chain_hash, ZERO_HASH};
use credmint_ledger::{DalekSigner, Record, Signer};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "example.org/ledger";

fn events() -> Vec<(&'static str, Event)> {
    let key = |seed: u8| DalekSigner::from_seed([seed; 32]).public_key();
    vec![
        (
            "system:init",
            Event::Genesis(Genesis {
                origin: ORIGIN.into(),
                keys: vec![
                    KeyInfo::ed25519(KeyRole::Ca, "ca", &key(2)),
                    KeyInfo::ed25519(KeyRole::Token, "token", &key(3)),
                    KeyInfo::ed25519(KeyRole::Ledger, "ledger", &key(1)),
                ],
                config_digest: [0x22; 32],
                ca_certificate_der: vec![0x30, 0x00],
            }),
        ),
        (
            "system:init",
            Event::OperatorCertIssued(OperatorCertIssued {
                name: "alice".into(),
                serial: vec![0x0f, 0x01],
                not_after: 1_731_536_000,
                key_fingerprint: [0x44; 32],
            }),
        ),
        (
            "operator:alice",
            Event::IntegrationRegistered(IntegrationRegistered {
                spec: IntegrationSpec {
                    name: "billing".into(),
                    business_owner: "finance".into(),
                    technical_owner: "platform".into(),
                    purpose: "invoices".into(),
                    environment: "prod".into(),
                    scopes: vec!["invoices:read".into()],
                    privilege_class: PrivilegeClass::Routine,
                    max_ttl_secs: 86_400,
                    review_by: 1_731_536_000,
                    approval_ref: "CHG-1".into(),
                    allow_server_auth: false,
                    dns_names: vec![],
                    status: IntegrationStatus::Active,
                    policy: Default::default(),
                },
            }),
        ),
        (
            "workload:billing",
            Event::CertificateIssued(CertificateIssued {
                serial: vec![0x01],
                integration: "billing".into(),
                subject: "spiffe://example.org/prod/billing".into(),
                not_before: 1_699_999_970,
                not_after: 1_700_086_370,
                key_fingerprint: [0x33; 32],
            }),
        ),
        (
            "operator:alice",
            Event::Revoked(Revoked {
                serial: vec![0x01],
                reason: 4,
            }),
        ),
    ]
}

/// The bundle and the `name: hex` lines FORMAT.md lists for it.
fn build() -> (Vec<u8>, Vec<(String, String)>) {
    let signer = DalekSigner::from_seed([0x01; 32]);
    let evs = events();
    let mut w = BundleWriter::new(Vec::new(), ORIGIN, evs.len() as u64, 2).unwrap();
    let mut frontier = Frontier::new();
    let mut prev = ZERO_HASH;
    let mut lines = Vec::new();
    for (i, (actor, event)) in evs.into_iter().enumerate() {
        let rec = Record {
            index: i as u64,
            timestamp_ms: 1_700_000_000_000 + i as u64,
            actor: actor.into(),
            prev_hash: prev,
            event,
        };
        let bytes = rec.encode();
        w.record(&bytes).unwrap();
        frontier.push(leaf_hash(&bytes), |_, _, _| {});
        prev = chain_hash(&bytes);
        lines.push((format!("record{i}.chain_hash"), hex::encode(prev)));
        lines.push((
            format!("record{i}.leaf_hash"),
            hex::encode(leaf_hash(&bytes)),
        ));
        if frontier.size() == 1 || frontier.size() == 5 {
            let cp = Checkpoint {
                origin: ORIGIN.into(),
                size: frontier.size(),
                root: frontier.root(),
                extensions: vec![],
            };
            w.checkpoint(&cp.sign(&signer).unwrap()).unwrap();
            lines.push((
                format!("root.size{}", frontier.size()),
                hex::encode(frontier.root()),
            ));
        }
    }
    let (bytes, _) = w.finish(&frontier.root(), &prev).unwrap();
    lines.push(("bundle.length".into(), bytes.len().to_string()));
    lines.push(("bundle.sha256".into(), hex::encode(Sha256::digest(&bytes))));
    (bytes, lines)
}

fn path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/small.bundle")
}

#[test]
fn small_bundle_vector_matches_file_format_doc_and_verifies() {
    let (bytes, lines) = build();
    if std::env::var_os("CREDMINT_REGEN_VECTORS").is_some() {
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), &bytes).unwrap();
        println!("```bundle-vector");
        for (k, v) in &lines {
            println!("{k}: {v}");
        }
        println!("```");
    }
    let file = std::fs::read(path()).expect("testdata/small.bundle is checked in");
    assert_eq!(
        file, bytes,
        "the writer no longer produces the checked-in bundle"
    );

    let doc =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md"))
            .unwrap();
    let block = doc
        .split("```bundle-vector\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("FORMAT.md has a bundle-vector block");
    let listed: Vec<(String, String)> = block
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        listed, lines,
        "FORMAT.md's bundle vector differs from the code"
    );

    let key = DalekSigner::from_seed([0x01; 32]).public_key();
    let r = crate::fixture::verify_with(&file, key);
    assert_eq!(
        r.outcome,
        Outcome::Verified,
        "{:?} {:?}",
        r.failure,
        r.violations
    );
    assert_eq!(
        verifier_key_string(ORIGIN, &key),
        "example.org/ledger+c186e258+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
    );
}
