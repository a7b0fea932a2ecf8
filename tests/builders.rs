//! Outside verification of the pure builders: CSRs from openssl, leaves checked by
//! `openssl verify` / `openssl x509 -text`, tokens checked by the `jsonwebtoken` crate.
//! The issuer here is an in-memory rcgen key; the HSM path is covered elsewhere.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use credmint::issue::{build_leaf, parse_csr, CsrError, Governance, LeafKeyKind, LeafSpec};
use credmint::token::{jwk, jwks, sign_jwt, thumbprint_kid, JwsAlg, TokenClaims};
use rcgen::{DistinguishedName, DnType, KeyPair};
use time::{Duration, OffsetDateTime};

const SPIFFE_ID: &str = "spiffe://td.example/ns/payments/sa/batch";
const OCSP_URL: &str = "http://ca.example/ocsp";
const CRL_URL: &str = "http://ca.example/crl/current.crl";
/// Content octets of 1.3.6.1.4.1.32473.1.1 (from `openssl asn1parse -genstr OID:...`).
const GOVERNANCE_OID_CONTENT: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x81, 0xfd, 0x59, 0x01, 0x01];

fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the `openssl` binary is required for tests/builders.rs; install openssl");
    out
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

struct Ca {
    der: Vec<u8>,
    key: KeyPair,
}

fn p256_ca(dir: &Path) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let now = OffsetDateTime::now_utc();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "credmint test root");
    dn.push(DnType::OrganizationName, "credmint");
    // The same root shape the appliance issues (pathlen 0, certSign/cRLSign).
    let params = credmint::ca::root_params(dn, now - Duration::hours(1), now + Duration::days(30));
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
    Ca {
        der: cert.der().to_vec(),
        key,
    }
}

/// Runs `openssl req` for `newkey` args, returning the CSR bytes (PEM or DER).
fn openssl_csr(dir: &Path, name: &str, newkey: &[&str], san: &str, der: bool) -> Vec<u8> {
    let out = dir.join(format!("{name}.csr"));
    let keyout = dir.join(format!("{name}.key"));
    let addext = format!("subjectAltName={san}");
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-nodes",
        "-keyout",
        keyout.to_str().unwrap(),
        "-subj",
        "/CN=x",
        "-addext",
        &addext,
        // An extension we do not honour must not make the request fail.
        "-addext",
        "keyUsage=digitalSignature,keyEncipherment",
        "-outform",
        if der { "DER" } else { "PEM" },
        "-out",
        out.to_str().unwrap(),
    ]);
    openssl_ok(&args);
    std::fs::read(out).unwrap()
}

fn spec(serial_byte: u8, dns_names: Vec<String>, server_auth: bool) -> LeafSpec {
    let now = OffsetDateTime::now_utc();
    let mut serial = [serial_byte; 16];
    serial[0] = 0x3c;
    LeafSpec {
        serial,
        spiffe_id: SPIFFE_ID.into(),
        dns_names,
        common_name: None,
        not_before: now - Duration::seconds(30),
        not_after: now + Duration::hours(1),
        client_auth: true,
        server_auth,
        ocsp_url: OCSP_URL.into(),
        crl_url: CRL_URL.into(),
        governance: Governance {
            integration: "payments-batch".into(),
            approval_ref: "approval/0042".into(),
            ledger_origin: "credmint.example/ledger".into(),
        },
    }
}

#[test]
fn openssl_csrs_become_leaves_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ca = p256_ca(dir.path());
    let ca_pem = dir.path().join("ca.pem");
    let cases: [(&str, &[&str], LeafKeyKind, bool); 3] = [
        (
            "p256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            LeafKeyKind::P256,
            false,
        ),
        (
            "ed25519",
            &["-newkey", "ed25519"],
            LeafKeyKind::Ed25519,
            true,
        ),
        (
            "rsa2048",
            &["-newkey", "rsa:2048"],
            LeafKeyKind::Rsa { bits: 2048 },
            false,
        ),
    ];
    for (i, (name, newkey, kind, der)) in cases.into_iter().enumerate() {
        let bytes = openssl_csr(
            dir.path(),
            name,
            newkey,
            "DNS:a.example,URI:spiffe://evil.example/x,IP:10.0.0.1",
            der,
        );
        let csr = parse_csr(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(csr.key_kind, kind, "{name}");
        assert_eq!(csr.dns_names, ["a.example"], "{name}");
        assert_eq!(csr.uris, ["spiffe://evil.example/x"], "{name}");
        assert_eq!(csr.unsupported_names, ["iPAddress"], "{name}");

        let server_auth = i == 1;
        let spec = spec(i as u8 + 1, csr.dns_names.clone(), server_auth);
        let leaf = build_leaf(&spec, &csr.spki_der, &ca.der, &ca.key).unwrap();
        let leaf_path = dir.path().join(format!("{name}.pem"));
        std::fs::write(&leaf_path, pem("CERTIFICATE", &leaf)).unwrap();
        let leaf_path = leaf_path.to_str().unwrap();

        let purpose = if server_auth {
            "sslserver"
        } else {
            "sslclient"
        };
        let verified = openssl_ok(&[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            ca_pem.to_str().unwrap(),
            leaf_path,
        ]);
        assert!(verified.trim_end().ends_with(": OK"), "{name}: {verified}");

        let text = openssl_ok(&["x509", "-in", leaf_path, "-text", "-noout"]);
        let must = [
            "Version: 3 (0x2)".to_string(),
            format!("URI:{SPIFFE_ID}"),
            "DNS:a.example".into(),
            "TLS Web Client Authentication".into(),
            "X509v3 Key Usage: critical".into(),
            "Digital Signature".into(),
            "CA:FALSE".into(),
            format!("OCSP - URI:{OCSP_URL}"),
            "X509v3 CRL Distribution Points".into(),
            format!("URI:{CRL_URL}"),
            "X509v3 Authority Key Identifier".into(),
            "X509v3 Subject Key Identifier".into(),
            format!("Subject: CN = {SPIFFE_ID}"),
            "1.3.6.1.4.1.32473.1.1:".into(),
            hex::encode(spec.serial)
                .as_bytes()
                .chunks(2)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(":"),
        ];
        for needle in &must {
            assert!(
                text.contains(needle.as_str()),
                "{name}: missing {needle:?} in\n{text}"
            );
        }
        assert!(!text.contains("Key Encipherment"), "{name}:\n{text}");
        assert!(
            !text.contains("2.25."),
            "{name}: legacy OID written:\n{text}"
        );
        assert!(
            !text.contains("evil.example"),
            "{name}: CSR URI leaked into leaf"
        );
        assert!(
            !text.contains("10.0.0.1"),
            "{name}: CSR IP leaked into leaf"
        );
        assert_eq!(
            text.contains("TLS Web Server Authentication"),
            server_auth,
            "{name}"
        );
        // Exactly one URI SAN.
        assert_eq!(text.matches("URI:spiffe://").count(), 1, "{name}");

        assert_eq!(
            Governance::parse_from_certificate(&leaf).unwrap(),
            Some(spec.governance.clone())
        );
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        assert_eq!(parsed.public_key().raw, csr.spki_der.as_slice(), "{name}");
        let gov_ext = parsed
            .extensions()
            .iter()
            .find(|e| e.oid.as_bytes() == GOVERNANCE_OID_CONTENT)
            .unwrap();
        assert!(!gov_ext.critical);
    }
}

#[test]
fn openssl_leaf_from_other_ca_is_rejected() {
    // Guards the test above: openssl verify must actually be able to fail.
    let dir = tempfile::tempdir().unwrap();
    let ca = p256_ca(dir.path());
    let other = tempfile::tempdir().unwrap();
    let _ = p256_ca(other.path());
    let csr = parse_csr(&openssl_csr(
        dir.path(),
        "p",
        &["-newkey", "ed25519"],
        "DNS:a.example",
        false,
    ))
    .unwrap();
    let leaf = build_leaf(&spec(9, vec![], false), &csr.spki_der, &ca.der, &ca.key).unwrap();
    let leaf_path = dir.path().join("leaf.pem");
    std::fs::write(&leaf_path, pem("CERTIFICATE", &leaf)).unwrap();
    let out = openssl(&[
        "verify",
        "-CAfile",
        other.path().join("ca.pem").to_str().unwrap(),
        leaf_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

#[test]
fn openssl_weak_or_foreign_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = openssl_csr(
        dir.path(),
        "rsa1024",
        &["-newkey", "rsa:1024"],
        "DNS:a",
        false,
    );
    assert_eq!(parse_csr(&rsa), Err(CsrError::RsaTooSmall { bits: 1024 }));
    let p384 = openssl_csr(
        dir.path(),
        "p384",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "DNS:a",
        true,
    );
    assert!(matches!(
        parse_csr(&p384),
        Err(CsrError::KeyTypeNotAllowed { .. })
    ));
    let ed448 = openssl_csr(dir.path(), "ed448", &["-newkey", "ed448"], "DNS:a", false);
    assert!(matches!(
        parse_csr(&ed448),
        Err(CsrError::KeyTypeNotAllowed { .. })
    ));
}

fn claims(aud: &str) -> TokenClaims {
    TokenClaims::new(
        "https://credmint.example",
        SPIFFE_ID,
        vec![aud.to_string()],
        OffsetDateTime::now_utc(),
        Duration::minutes(5),
        "jti-0001",
    )
    .with_scopes(&["ledger:read", "ledger:write"])
    .with_env("prod")
    .with_approval_ref("approval/0042")
}

/// Verifies `token` with jsonwebtoken using only our JWKS output.
fn verify_with_jsonwebtoken(
    token: &str,
    set: &serde_json::Value,
    alg: jsonwebtoken::Algorithm,
    aud: &str,
) -> Result<TokenClaims, jsonwebtoken::errors::Error> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(set.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let key = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(key)?;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&["https://credmint.example"]);
    validation.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<TokenClaims>(token, &key, &validation).map(|d| d.claims)
}

fn tamper_payload(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["scope"] = "admin".into();
    format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    )
}

#[test]
fn es256_token_verifies_with_jsonwebtoken_via_our_jwks() {
    use p256::ecdsa::signature::Signer;
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
    let public = key.verifying_key().to_sec1_point(false).as_bytes().to_vec();
    let kid = thumbprint_kid(&public, JwsAlg::Es256).unwrap();
    let set = jwks(&[jwk(&public, JwsAlg::Es256, &kid).unwrap()]);
    assert!(set["keys"][0].get("d").is_none());

    let claims = claims("billing");
    let token = sign_jwt(JwsAlg::Es256, &kid, &claims.to_value(), |input| {
        let sig: p256::ecdsa::Signature = key.sign(input);
        Ok::<_, std::convert::Infallible>(sig.to_bytes().to_vec())
    })
    .unwrap();
    let alg = jsonwebtoken::Algorithm::ES256;
    assert_eq!(
        verify_with_jsonwebtoken(&token, &set, alg, "billing").unwrap(),
        claims
    );
    assert!(verify_with_jsonwebtoken(&tamper_payload(&token), &set, alg, "billing").is_err());
    assert!(verify_with_jsonwebtoken(&token, &set, alg, "someone-else").is_err());
}

#[test]
fn eddsa_token_verifies_with_jsonwebtoken_via_our_jwks() {
    use ed25519_dalek::Signer;
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let kid = thumbprint_kid(&public, JwsAlg::EdDsa).unwrap();
    let set = jwks(&[jwk(&public, JwsAlg::EdDsa, &kid).unwrap()]);

    let claims = claims("billing");
    let token = sign_jwt(JwsAlg::EdDsa, &kid, &claims.to_value(), |input| {
        Ok::<_, std::convert::Infallible>(key.sign(input).to_bytes().to_vec())
    })
    .unwrap();
    let alg = jsonwebtoken::Algorithm::EdDSA;
    assert_eq!(
        verify_with_jsonwebtoken(&token, &set, alg, "billing").unwrap(),
        claims
    );
    assert!(verify_with_jsonwebtoken(&tamper_payload(&token), &set, alg, "billing").is_err());
    // A JWKS without the signing key must not verify it.
    let other = jwk(&[7u8; 32], JwsAlg::EdDsa, &kid).unwrap();
    assert!(verify_with_jsonwebtoken(&token, &jwks(&[other]), alg, "billing").is_err());
}

/// A certificate openssl writes with the given extra extensions (`-addext` values).
fn openssl_cert_with(dir: &Path, name: &str, addext: &[String]) -> Vec<u8> {
    let out = dir.join(format!("{name}.der"));
    let keyout = dir.join(format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ed25519",
        "-nodes",
        "-keyout",
        keyout.to_str().unwrap(),
        "-subj",
        "/CN=legacy",
        "-days",
        "1",
        "-outform",
        "DER",
        "-out",
        out.to_str().unwrap(),
    ];
    for ext in addext {
        args.extend_from_slice(&["-addext", ext.as_str()]);
    }
    openssl_ok(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn governance_under_the_legacy_uuid_oid_is_still_read() {
    // Certificates issued before the switch carry the record under
    // 2.25.200161243720697351444210605520779894002; openssl writes one here.
    let dir = tempfile::tempdir().unwrap();
    let record = Governance {
        integration: "payments-batch".into(),
        approval_ref: "approval/0042".into(),
        ledger_origin: "credmint.example/ledger".into(),
    };
    let value = hex::encode(record.encode());
    let legacy = format!("{}=DER:{value}", credmint::issue::LEGACY_GOVERNANCE_OID_STR);
    let current = format!("{}=DER:{value}", credmint::issue::GOVERNANCE_OID_STR);
    let old = openssl_cert_with(dir.path(), "old", std::slice::from_ref(&legacy));
    assert_eq!(
        Governance::parse_from_certificate(&old).unwrap(),
        Some(record.clone())
    );
    let new = openssl_cert_with(dir.path(), "new", std::slice::from_ref(&current));
    assert_eq!(
        Governance::parse_from_certificate(&new).unwrap(),
        Some(record)
    );
    // The record twice (once under each OID) is refused, and no extension is `None`.
    let both = openssl_cert_with(dir.path(), "both", &[legacy, current]);
    assert!(matches!(
        Governance::parse_from_certificate(&both),
        Err(credmint::issue::GovernanceError::Duplicate)
    ));
    let none = openssl_cert_with(dir.path(), "none", &[]);
    assert_eq!(Governance::parse_from_certificate(&none).unwrap(), None);
}
