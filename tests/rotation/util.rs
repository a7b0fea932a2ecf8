//! Helpers shared by the rotation tests.

use serde_json::{json, Value};

use crate::common::{process_softhsm_conf, Served, SOFTHSM_MODULE};

/// `POST /v1/admin/keys/{role}/rotate` as the init operator; asserts 200.
pub async fn rotate(s: &Served, role: &str) -> Value {
    let resp = s
        .operator()
        .post(s.url(&format!("/v1/admin/keys/{role}/rotate")))
        .json(&json!({"reason": "test rotation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

pub fn leaf_pem(chain: &str) -> String {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_string()
}

pub fn write(dir: &std::path::Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_string_lossy().into_owned()
}

/// `pkcs11-tool --list-objects` of the appliance's token.
pub fn list_objects(s: &Served) -> String {
    let out = std::process::Command::new(crate::common::require_tool("pkcs11-tool"))
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            &s.app.token_label,
        ])
        .args(["--login", "--pin", &s.app.user_pin(), "--list-objects"])
        .env("SOFTHSM2_CONF", process_softhsm_conf())
        .output()
        .expect("pkcs11-tool");
    assert!(out.status.success(), "{}", crate::common::text(&out.stderr));
    crate::common::text(&out.stdout)
}

/// Asserts the private key labelled `label` is sensitive and was never extractable.
pub fn assert_custodial(s: &Served, label: &str) {
    let listing = list_objects(s);
    let obj = listing
        .split("Private Key Object")
        .skip(1)
        .find(|o| {
            o.lines().any(|l| {
                l.trim_start().starts_with("label:") && l.trim_end().ends_with(&format!(" {label}"))
            })
        })
        .unwrap_or_else(|| panic!("no private key {label:?}:\n{listing}"));
    let access = obj
        .lines()
        .find(|l| l.trim_start().starts_with("Access:"))
        .unwrap_or_else(|| panic!("no Access line:\n{obj}"));
    assert!(access.contains("always sensitive"), "{access}");
    assert!(access.contains("never extractable"), "{access}");
    assert!(access.contains("local"), "generated on the token: {access}");
    let flags = credmint::hsm::keys::private_key_flags(&s.state().hsm, label).unwrap();
    assert!(
        flags.sensitive && !flags.extractable && flags.never_extractable,
        "{flags:?}"
    );
    let value = credmint::hsm::keys::private_value_access(&s.state().hsm, label).unwrap();
    assert!(
        matches!(value, cryptoki::object::AttributeInfo::Sensitive),
        "{value:?}"
    );
}
