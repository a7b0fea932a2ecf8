//! The agent with its key in a PKCS#11 token of the workload's own (SoftHSM2 here): the
//! key pair is generated inside the token, never extractable, no key file is written,
//! and renewals over mTLS are signed by the token.

use std::time::Duration;

use crate::common::{openssl, require_tool, softhsm_store, Served, TestAppliance, SOFTHSM_MODULE};
use crate::harness::{assert_log_clean, Agent, Knobs};
use crate::support::{enrollment_token, register, registration};

/// A SoftHSM2 store of its own with one initialised token; returns its config path.
fn workload_token(dir: &std::path::Path, label: &str, pin: &str) -> std::path::PathBuf {
    let conf = softhsm_store(dir);
    let out = std::process::Command::new(require_tool("softhsm2-util"))
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            "87654321",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

fn pubkey_of(cert: &std::path::Path) -> String {
    let (ok, out) = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"]);
    assert!(ok, "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_key_never_leaves_the_token_and_signs_the_renewals() {
    let s: Served = TestAppliance::new("agent-pkcs11").serve().await;
    let resp = register(&s, &registration("agent-pkcs11")).await;
    assert_eq!(resp.status(), 201);
    let token = enrollment_token(&s, "agent-pkcs11").await;
    let hsm = tempfile::tempdir().unwrap();
    let conf = workload_token(hsm.path(), "workload", "24681357");
    let pin = hsm.path().join("pin");
    std::fs::write(&pin, "24681357\n").unwrap();
    let knobs = Knobs {
        ttl_secs: 8,
        extra: format!(
            "[pkcs11]\nmodule = \"{SOFTHSM_MODULE}\"\ntoken_label = \"workload\"\npin = {{ file = \"{}\" }}\n",
            pin.display()
        ),
        env: vec![("SOFTHSM2_CONF".into(), conf.to_str().unwrap().into())],
        ..Knobs::default()
    };
    let agent = Agent::start(&s, &token, &knobs);
    let first = agent.serving(Duration::from_secs(30), None).await;
    assert!(
        !agent.out("key.pem").exists(),
        "no key file for a token key"
    );
    assert!(!agent.dir.path().join("out/state/key.pem").exists());
    let key_first = pubkey_of(&agent.out("cert.pem"));

    // The token holds the key pair: private, sensitive, never extractable, made there.
    let listing = std::process::Command::new(require_tool("pkcs11-tool"))
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            "workload",
            "--login",
            "--pin",
            "24681357",
            "--list-objects",
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let private = listing
        .split("Private Key Object")
        .nth(1)
        .unwrap_or_else(|| panic!("no private key in the token:\n{listing}"));
    assert!(private.contains("label:      credmint-agent"), "{listing}");
    assert!(
        private.contains("never extractable") && private.contains("always sensitive"),
        "{listing}"
    );
    assert!(
        private.contains("local"),
        "generated inside the token: {listing}"
    );

    // A renewal over mTLS (CertificateVerify signed by the token) keeps the token's key.
    let second = agent.serving(Duration::from_secs(15), Some(&first)).await;
    assert_ne!(first, second);
    assert_eq!(
        pubkey_of(&agent.out("cert.pem")),
        key_first,
        "the same token key"
    );
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        agent.out("bundle.pem").to_str().unwrap(),
        agent.out("cert.pem").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert_log_clean(&agent, &token);
    assert!(!agent.log().contains("24681357"), "PIN in the log");
    s.stop().await;
}
