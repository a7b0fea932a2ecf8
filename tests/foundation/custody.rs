//! Keys are generated in the token, cannot leave it, and sign correctly.

use std::process::Command;
use std::sync::Arc;

use credmint::config::Algorithm;
use credmint::hsm::keys::{private_key_flags, private_value_access};
use credmint::hsm::{Hsm, HsmKey};
use cryptoki::object::AttributeInfo;
use ed25519_dalek::Verifier as _;

use crate::common::{process_softhsm_conf, require_tool, text, TestAppliance, SOFTHSM_MODULE};

#[test]
fn init_generates_sensitive_never_extractable_keys_seen_by_pkcs11_tool() {
    let app = TestAppliance::new("custody");
    let report = app.init_in_process();
    assert!(
        report.steps.iter().filter(|s| s.created).count() >= 5,
        "{report:?}"
    );

    let out = Command::new(require_tool("pkcs11-tool"))
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            &app.token_label,
        ])
        .args(["--login", "--pin", &app.user_pin(), "--list-objects"])
        .env("SOFTHSM2_CONF", process_softhsm_conf())
        .output()
        .expect("pkcs11-tool");
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{listing}\n{}", text(&out.stderr));
    let private_objects: Vec<&str> = listing.split("Private Key Object").skip(1).collect();
    assert_eq!(
        private_objects.len(),
        3,
        "expected 3 private keys:\n{listing}"
    );
    for obj in &private_objects {
        let access = obj
            .lines()
            .find(|l| l.trim_start().starts_with("Access:"))
            .unwrap_or_else(|| panic!("no Access line in {obj}"));
        assert!(access.contains("always sensitive"), "{access}");
        assert!(access.contains("never extractable"), "{access}");
        assert!(access.contains("local"), "generated on the token: {access}");
        let usage = obj
            .lines()
            .find(|l| l.trim_start().starts_with("Usage:"))
            .unwrap_or_else(|| panic!("no Usage line in {obj}"));
        assert!(usage.contains("sign"), "{usage}");
        for never in ["decrypt", "unwrap", "derive"] {
            assert!(!usage.contains(never), "private key may {never}: {usage}");
        }
    }
    for label in ["ca", "token", "ledger"] {
        assert!(
            listing.contains(&format!("label:      {label}")),
            "{label} missing:\n{listing}"
        );
    }
}

#[test]
fn private_key_value_cannot_be_read() {
    let app = TestAppliance::new("value");
    app.init_in_process();
    let hsm = Hsm::open(&app.config().hsm).unwrap();
    for label in ["ca", "token", "ledger"] {
        let flags = private_key_flags(&hsm, label).unwrap();
        assert!(
            flags.token && flags.private && flags.sensitive,
            "{label}: {flags:?}"
        );
        assert!(!flags.extractable && flags.never_extractable && flags.always_sensitive);
        // It can sign and nothing else, and its attributes cannot be changed or copied.
        assert!(flags.sign, "{label}: {flags:?}");
        assert!(
            !flags.decrypt && !flags.unwrap && !flags.derive,
            "{label}: {flags:?}"
        );
        assert!(!flags.modifiable && !flags.copyable, "{label}: {flags:?}");
        // C_GetAttributeValue(CKA_VALUE) answers CKR_ATTRIBUTE_SENSITIVE.
        let access = private_value_access(&hsm, label).unwrap();
        assert!(
            matches!(access, AttributeInfo::Sensitive),
            "{label}: {access:?}"
        );
    }
}

#[test]
fn hsm_signatures_verify_with_independent_libraries() {
    let app = TestAppliance::new("verify");
    app.init_in_process();
    let hsm = Arc::new(Hsm::open(&app.config().hsm).unwrap());
    let msg = b"credmint signs this";

    let ed = HsmKey::load(hsm.clone(), "ledger", Algorithm::Ed25519).unwrap();
    let pk: [u8; 32] = ed.public_key().raw.clone().try_into().unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&ed.sign_raw(msg).unwrap()).unwrap();
    vk.verify(msg, &sig)
        .expect("Ed25519 signature verifies with ed25519-dalek");
    assert!(vk.verify(b"other message", &sig).is_err());

    let ec = HsmKey::load(hsm, "ca", Algorithm::EcdsaP256).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&ec.public_key().raw).unwrap();
    let raw = p256::ecdsa::Signature::from_slice(&ec.sign_raw(msg).unwrap()).unwrap();
    vk.verify(msg, &raw).expect("raw r||s verifies with p256");
    let der = p256::ecdsa::DerSignature::try_from(ec.sign_x509(msg).unwrap().as_slice()).unwrap();
    vk.verify(msg, &der)
        .expect("DER signature verifies with p256");
}

#[test]
fn lost_sessions_are_reopened_transparently() {
    let app = TestAppliance::new("recover");
    app.init_in_process();
    let hsm = Arc::new(Hsm::open(&app.config().hsm).unwrap());
    let key = HsmKey::load(hsm.clone(), "ca", Algorithm::EcdsaP256).unwrap();
    key.sign_raw(b"before").unwrap();
    // Closing every session also ends the login; the next call must log in again.
    hsm.close_all_sessions();
    key.sign_raw(b"after")
        .expect("signing recovers after sessions were lost");
    hsm.probe().unwrap();
}

#[test]
fn pool_signs_from_many_threads() {
    let app = TestAppliance::new("threads");
    app.init_in_process();
    let hsm = Arc::new(Hsm::open(&app.config().hsm).unwrap());
    let key = HsmKey::load(hsm, "token", Algorithm::EcdsaP256).unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key().raw).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let (key, vk) = (key.clone(), vk);
            s.spawn(move || {
                for i in 0..20u8 {
                    let msg = [t, i];
                    let sig =
                        p256::ecdsa::Signature::from_slice(&key.sign_raw(&msg).unwrap()).unwrap();
                    vk.verify(&msg, &sig).unwrap();
                }
            });
        }
    });
}

#[test]
fn init_twice_changes_nothing_and_says_so() {
    let app = TestAppliance::new("idem");
    let first = app.cli(&["init"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("initialised:"),
        "{}",
        text(&first.stdout)
    );
    let ca_before = std::fs::read(app.data().join("ca.pem")).unwrap();
    let ledger_state = || {
        let l = credmint_ledger::Ledger::open(&app.data().join("ledger.redb")).unwrap();
        (l.size(), l.root(), l.latest_checkpoint().unwrap())
    };
    let ledger_before = ledger_state();

    let second = app.cli(&["init"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let out = text(&second.stdout);
    assert!(
        out.contains("already initialised: nothing changed"),
        "{out}"
    );
    assert!(!out.contains("created"), "{out}");
    assert!(
        std::fs::read(app.data().join("ca.pem")).unwrap() == ca_before,
        "ca.pem changed"
    );
    assert_eq!(ledger_state(), ledger_before, "ledger changed");

    // The CA certificate is a valid self-signed root for openssl.
    let ca = app.data().join("ca.pem");
    let verify = Command::new(require_tool("openssl"))
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .arg(&ca)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    // PIN files are private to the appliance user.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(app.data().join("hsm-user.pin"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "PIN file mode {mode:o}");
}
