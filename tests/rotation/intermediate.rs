//! Intermediate CA mode: `init --ca-csr`, an offline root made with the openssl CLI signs
//! the CSR, `ca import` checks and installs it, and the appliance then serves chains up to
//! that root.

use std::path::Path;

use crate::common::{
    free_port, genesis_ledger_key, openssl, openssl_req_p256, openssl_root, openssl_sign_csr, p,
    text, Served, TestAppliance,
};
use crate::support::registered_workload;

fn refused(app: &TestAppliance, cert: &str, chain: &str, needle: &str) {
    let ledger = app.config().ledger.file;
    let size = || {
        ledger
            .exists()
            .then(|| credmint_ledger::Ledger::open(&ledger).unwrap().size())
    };
    let before = size();
    let out = app.cli(&["ca", "import", cert, "--chain", chain]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(24), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert_eq!(size(), before, "a refused import wrote to the ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_root_signs_the_csr_and_leaves_verify_up_to_it() {
    let port = free_port();
    let app = TestAppliance::with_listen("intermediate", &format!("127.0.0.1:{port}"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let csr = p(dir, "ca.csr");
    let out = app.cli(&["init", "--ca-csr", &csr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!app.data().join("ca.pem").exists() && !app.config().ledger.file.exists());
    let (ok, o) = openssl(&["req", "-in", &csr, "-verify", "-noout", "-subject"]);
    assert!(ok && o.contains("credmint test CA"), "{o}");

    // No service before the import: refused with the next step named.
    let out = app.cli(&["serve"]);
    assert_eq!(out.status.code(), Some(24), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("credmint ca import"));

    let root = openssl_root(dir, "root");
    let other_root = openssl_root(dir, "other");
    let inter = openssl_sign_csr(dir, "root", &csr, "v3_ca", "intermediate.pem");
    let not_ca = openssl_sign_csr(dir, "root", &csr, "v3_leaf", "not-ca.pem");
    let (ok, o) = openssl_req_p256(&[
        "-new",
        "-keyout",
        &p(dir, "stranger.key"),
        "-subj",
        "/CN=stranger",
        "-out",
        &p(dir, "stranger.csr"),
    ]);
    assert!(ok, "{o}");
    let stranger = openssl_sign_csr(
        dir,
        "root",
        &p(dir, "stranger.csr"),
        "v3_ca",
        "stranger.pem",
    );
    refused(&app, &stranger, &root, "another key than the HSM CA key");
    refused(&app, &not_ca, &root, "not a CA certificate");
    refused(&app, &inter, &other_root, "issuer chain");
    refused(&app, &inter, &inter, "issuer chain");

    let out = app.cli(&["ca", "import", &inter, "--chain", &root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pinned = genesis_ledger_key(&app.config().ledger.file);
    let root_pem = std::fs::read(&root).unwrap();
    let (s, server) = Served::spawned_under_root(app, port, &root_pem);
    // The TLS chain reaches the enterprise root (the client trusts only it).
    let bundle = crate::common::fetch(&s.anonymous(), &s.url("/v1/ca.pem")).await;
    let bundle = text(&bundle);
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    assert!(bundle.ends_with(&text(&root_pem)), "{bundle}");

    let w = registered_workload(&s, "web").await;
    assert_eq!(w.chain_pem.matches("BEGIN CERTIFICATE").count(), 3);
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, first_pem(&w.chain_pem)).unwrap();
    let (ok, o) = verify(&root, &inter, &leaf);
    assert!(ok && o.contains(": OK"), "{o}");

    // A successor CA key would be a self-signed root outside the enterprise hierarchy.
    let out = s.app.cli(&["keys", "rotate", "ca"]);
    assert_eq!(out.status.code(), Some(31), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("intermediate CA mode"),
        "{}",
        text(&out.stderr)
    );

    let report = s.assert_ledger_verifies(pinned).await;
    assert_eq!(report.event_counts.get("ca_imported"), Some(&1));
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:?}");

    // Rotation in intermediate mode, appliance stopped: the next key's CSR, signed by the
    // same enterprise root, then imported.
    let app = s.app;
    let next_csr = p(dir, "next.csr");
    let out = app.cli(&["ca", "rotate", "--csr", &next_csr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The old intermediate is not the next key's certificate.
    refused(&app, &inter, &root, "another key than the HSM CA key");
    let next = openssl_sign_csr(dir, "root", &next_csr, "v3_ca", "next.pem");
    let out = app.cli(&["ca", "import", &next, "--chain", &root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, server) = Served::spawned_under_root(app, port, &root_pem);
    let w2 = registered_workload(&s, "api").await;
    let leaf2 = dir.join("leaf2.pem");
    std::fs::write(&leaf2, first_pem(&w2.chain_pem)).unwrap();
    let (ok, o) = verify(&root, &next, &leaf2);
    assert!(ok && o.contains(": OK"), "{o}");
    let (ok, o) = verify(&root, &inter, &leaf2);
    assert!(!ok, "new leaf verified through the old intermediate: {o}");
    // The old generation's leaf still verifies and still gets status.
    let (ok, o) = verify(&root, &inter, &leaf);
    assert!(ok, "{o}");
    let report = s.assert_ledger_verifies(pinned).await;
    assert_eq!(report.event_counts.get("ca_imported"), Some(&2));
    assert_eq!(report.event_counts.get("key_rotated"), Some(&1));
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:?}");
}

fn first_pem(chain: &str) -> &str {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
}

/// `openssl verify -CAfile root -untrusted intermediate leaf`.
fn verify(root: &str, intermediate: &str, leaf: &Path) -> (bool, String) {
    openssl(&[
        "verify",
        "-CAfile",
        root,
        "-untrusted",
        intermediate,
        leaf.to_str().unwrap(),
    ])
}
