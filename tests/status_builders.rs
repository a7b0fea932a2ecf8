//! Outside verification of the OCSP and CRL builders (`credmint::status::{ocsp, crl}`):
//! requests come from `openssl ocsp`, responses are checked by `openssl ocsp -respin`, CRLs
//! by `openssl crl` and `openssl verify -crl_check`. The CA key is an in-memory rcgen key
//! (the HSM path signs through the same closures and `SigningKey` trait).

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine;
use credmint::status::crl::{build_crl, CrlEntry};
use credmint::status::ocsp::{
    build_response, error_response, parse_request, CertState, ErrorStatus, HashAlg, OcspError,
    OcspIssuer, ParsedRequest, SigAlg, MAX_REQUEST_BYTES,
};
use der::{Decode, Encode};
use proptest::prelude::*;
use rcgen::{
    CertificateParams, CrlDistributionPoint, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};
use x509_ocsp::{BasicOcspResponse, OcspResponse};

const CRL_URL: &str = "http://127.0.0.1:1/crl";
const SERIAL: [u8; 16] = [
    0x3c, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0,
];
const SERIAL2: [u8; 16] = [0x2a; 16];
const KEY_COMPROMISE: u8 = 1;

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the `openssl` binary is required for tests/status_builders.rs; install openssl")
}

/// stdout + stderr (openssl prints verification verdicts on stderr).
fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
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

fn now() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp() as u64
}

/// A CA, two leaves (`leaf.pem` serial SERIAL, `leaf2.pem` serial SERIAL2) carrying the CRL
/// DP `CRL_URL`, and a leaf (`otherdp.pem`) whose CRL DP is a different URL.
struct Pki {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    ca_der: Vec<u8>,
    ca_key: KeyPair,
}

impl Pki {
    fn new(alg: &'static SignatureAlgorithm) -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let ca_key = KeyPair::generate_for(alg).unwrap();
        let t = OffsetDateTime::now_utc();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "credmint status test root");
        dn.push(DnType::OrganizationName, "credmint");
        // The same root shape the appliance issues (pathlen 0, certSign/cRLSign).
        let params = credmint::ca::root_params(dn, t - Duration::hours(1), t + Duration::days(30));
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki {
            _tmp: tmp,
            dir,
            ca_der: ca.der().to_vec(),
            ca_key,
        };
        pki.leaf("leaf.pem", &SERIAL, CRL_URL);
        pki.leaf("leaf2.pem", &SERIAL2, CRL_URL);
        pki.leaf("otherdp.pem", &[0x3d; 16], "http://127.0.0.1:1/other.crl");
        pki
    }

    fn leaf(&self, name: &str, serial: &[u8], crl_url: &str) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec!["leaf.example".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![crl_url.to_string()],
        }];
        let t = OffsetDateTime::now_utc();
        params.not_before = t - Duration::minutes(10);
        params.not_after = t + Duration::days(1);
        let issuer =
            Issuer::from_ca_cert_der(&self.ca_der.as_slice().into(), &self.ca_key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.dir.join(name), cert.pem()).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    fn issuer(&self) -> OcspIssuer {
        OcspIssuer::from_ca_der(&self.ca_der).unwrap()
    }

    /// `openssl ocsp ... -reqout`, returning the request DER (and its path).
    fn openssl_request(&self, name: &str, certs: &[&str], extra: &[&str]) -> (Vec<u8>, String) {
        let out = self.path(name);
        let ca = self.path("ca.pem");
        // openssl wants digest options before -cert.
        let mut args = vec!["ocsp"];
        args.extend_from_slice(extra);
        args.extend(["-issuer", ca.as_str()]);
        let cert_paths: Vec<String> = certs.iter().map(|c| self.path(c)).collect();
        for c in &cert_paths {
            args.extend(["-cert", c.as_str()]);
        }
        args.extend(["-reqout", out.as_str()]);
        openssl_ok(&args);
        (std::fs::read(&out).unwrap(), out)
    }

    /// The signing closure build_response takes (the HSM path passes `sign_x509`).
    fn sign(&self) -> impl Fn(&[u8]) -> Result<Vec<u8>, rcgen::Error> + '_ {
        move |m| self.ca_key.sign(m)
    }

    fn write(&self, name: &str, der: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, der).unwrap();
        p
    }
}

fn respond(
    pki: &Pki,
    alg: SigAlg,
    req: &ParsedRequest,
    states: &[CertState],
    nonce: Option<&[u8]>,
) -> Vec<u8> {
    let issuer = pki.issuer();
    let answers: Vec<_> = req
        .cert_ids
        .iter()
        .cloned()
        .zip(states.iter().copied())
        .collect();
    assert_eq!(answers.len(), states.len());
    let t = now();
    build_response(
        &issuer,
        &answers,
        nonce,
        t,
        t - 5,
        t + 3600,
        alg,
        pki.sign(),
    )
    .unwrap()
}

/// `openssl ocsp -respin` over `resp`, checking status of leaf.pem against the CA.
fn openssl_check(pki: &Pki, resp: &[u8], certs: &[&str], extra: &[&str]) -> String {
    let resp_path = pki.write("resp.der", resp);
    let ca = pki.path("ca.pem");
    let mut args = vec!["ocsp"];
    args.extend_from_slice(extra);
    args.extend([
        "-respin",
        resp_path.as_str(),
        "-issuer",
        ca.as_str(),
        "-CAfile",
        ca.as_str(),
    ]);
    let cert_paths: Vec<String> = certs.iter().map(|c| pki.path(c)).collect();
    for c in &cert_paths {
        args.extend(["-cert", c.as_str()]);
    }
    let out = text(&openssl(&args));
    assert!(!out.contains("Status times invalid"), "{out}");
    out
}

#[test]
fn openssl_requests_parse_and_match_the_issuer() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let issuer = pki.issuer();
    for (extra, hash) in [
        (&["-no_nonce"][..], HashAlg::Sha1),
        (&["-no_nonce", "-sha256"][..], HashAlg::Sha256),
    ] {
        let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], extra);
        let req = parse_request(&der).unwrap();
        assert_eq!(req.cert_ids.len(), 1);
        let id = &req.cert_ids[0];
        assert_eq!(id.hash(), &hash);
        assert_eq!(id.serial(), SERIAL);
        assert!(issuer.matches(id), "{hash:?} CertID must match the CA");
        assert_eq!(req.nonce, None);
        // openssl's CertID is what OcspIssuer would build for the same serial.
        assert_eq!(
            issuer.cert_id(hash.clone(), &SERIAL).unwrap().der(),
            id.der()
        );
        if hash == HashAlg::Sha1 {
            // openssl computed issuerKeyHash = SHA-1 of the key BIT STRING contents: the
            // same value as ResponderID byKey.
            assert_eq!(id.issuer_key_hash(), issuer.responder_key_hash());
        }
    }

    let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], &[]);
    let req = parse_request(&der).unwrap();
    assert_eq!(
        req.nonce.as_ref().map(Vec::len),
        Some(16),
        "openssl default nonce"
    );

    // A CertID for another CA's certificate parses but does not match.
    let other = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, _) = other.openssl_request("req.der", &["leaf.pem"], &["-no_nonce"]);
    let req = parse_request(&der).unwrap();
    assert!(!issuer.matches(&req.cert_ids[0]));
    assert!(other.issuer().matches(&req.cert_ids[0]));
}

#[test]
fn good_revoked_unknown_verify_in_openssl_sha1_and_sha256() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let revoked = CertState::Revoked {
        revoked_at: now() - 60,
        reason: Some(KEY_COMPROMISE),
    };
    for extra in [&["-no_nonce"][..], &["-no_nonce", "-sha256"][..]] {
        let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], extra);
        let req = parse_request(&der).unwrap();
        for (state, expect) in [
            (CertState::Good, "leaf.pem: good"),
            (revoked, "leaf.pem: revoked"),
            (CertState::Unknown, "leaf.pem: unknown"),
        ] {
            let resp = respond(&pki, SigAlg::EcdsaP256Sha256, &req, &[state], None);
            let out = openssl_check(&pki, &resp, &["leaf.pem"], extra);
            assert!(
                out.contains("Response verify OK"),
                "{extra:?} {state:?}:\n{out}"
            );
            assert!(out.contains(expect), "{extra:?} {state:?}:\n{out}");
            assert!(
                out.contains("This Update:") && out.contains("Next Update:"),
                "{out}"
            );
            if matches!(state, CertState::Revoked { .. }) {
                assert!(out.contains("Reason: keyCompromise"), "{out}");
                assert!(out.contains("Revocation Time:"), "{out}");
            }
        }
    }
}

#[test]
fn unspecified_reason_is_omitted() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], &["-no_nonce"]);
    let req = parse_request(&der).unwrap();
    let state = CertState::Revoked {
        revoked_at: now() - 60,
        reason: Some(0),
    };
    let resp = respond(&pki, SigAlg::EcdsaP256Sha256, &req, &[state], None);
    let out = openssl_check(&pki, &resp, &["leaf.pem"], &["-no_nonce"]);
    assert!(
        out.contains("Response verify OK") && out.contains("leaf.pem: revoked"),
        "{out}"
    );
    assert!(!out.contains("Reason:"), "{out}");
}

#[test]
fn ed25519_ca_responses_verify_in_openssl() {
    let pki = Pki::new(&rcgen::PKCS_ED25519);
    let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], &["-no_nonce"]);
    let req = parse_request(&der).unwrap();
    assert!(pki.issuer().matches(&req.cert_ids[0]));
    assert_eq!(pki.issuer().sig_alg(), SigAlg::Ed25519);
    let resp = respond(&pki, SigAlg::Ed25519, &req, &[CertState::Good], None);
    let out = openssl_check(&pki, &resp, &["leaf.pem"], &["-no_nonce"]);
    assert!(
        out.contains("Response verify OK") && out.contains("leaf.pem: good"),
        "{out}"
    );
    let shown = openssl_ok(&[
        "ocsp",
        "-respin",
        &pki.path("resp.der"),
        "-resp_text",
        "-noverify",
    ]);
    assert!(shown.contains("Signature Algorithm: ED25519"), "{shown}");
}

#[test]
fn several_cert_ids_get_one_answer_each() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, _) = pki.openssl_request("req.der", &["leaf.pem", "leaf2.pem"], &["-no_nonce"]);
    let req = parse_request(&der).unwrap();
    assert_eq!(req.cert_ids.len(), 2);
    assert_eq!(req.cert_ids[1].serial(), SERIAL2);
    let states = [
        CertState::Revoked {
            revoked_at: now() - 60,
            reason: Some(KEY_COMPROMISE),
        },
        CertState::Good,
    ];
    let resp = respond(&pki, SigAlg::EcdsaP256Sha256, &req, &states, None);
    let out = openssl_check(&pki, &resp, &["leaf.pem", "leaf2.pem"], &["-no_nonce"]);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("leaf.pem: revoked"), "{out}");
    assert!(out.contains("leaf2.pem: good"), "{out}");
}

#[test]
fn nonce_is_echoed_and_openssl_checks_it() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, req_path) = pki.openssl_request("req.der", &["leaf.pem"], &[]);
    let req = parse_request(&der).unwrap();
    let nonce = req.nonce.clone().expect("openssl sends a nonce by default");
    let reqin = ["-reqin", req_path.as_str()];

    // Echoed: openssl compares it with the nonce of the request in req.der. (No -cert here:
    // openssl would build a fresh request with a fresh nonce from it and ignore -reqin.)
    let resp = respond(
        &pki,
        SigAlg::EcdsaP256Sha256,
        &req,
        &[CertState::Good],
        Some(&nonce),
    );
    let out = openssl_check(&pki, &resp, &[], &reqin);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(
        !out.contains("Nonce Verify error") && !out.contains("no nonce"),
        "{out}"
    );

    // Our own reading of the response: the same bytes come back in responseExtensions.
    let parsed = OcspResponse::from_der(&resp).unwrap();
    let basic =
        BasicOcspResponse::from_der(parsed.response_bytes.unwrap().response.as_bytes()).unwrap();
    assert_eq!(basic.nonce().unwrap().0.as_bytes(), nonce.as_slice());

    // Controls: a different nonce fails openssl's check, a missing one is warned about.
    let resp = respond(
        &pki,
        SigAlg::EcdsaP256Sha256,
        &req,
        &[CertState::Good],
        Some(&[7; 16]),
    );
    let out = openssl_check(&pki, &resp, &[], &reqin);
    assert!(out.contains("Nonce Verify error"), "{out}");
    let resp = respond(
        &pki,
        SigAlg::EcdsaP256Sha256,
        &req,
        &[CertState::Good],
        None,
    );
    let out = openssl_check(&pki, &resp, &[], &reqin);
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
}

#[test]
fn resp_text_shows_responder_by_key_and_structure() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let issuer = pki.issuer();
    let (der, _) = pki.openssl_request("req.der", &["leaf.pem"], &["-no_nonce"]);
    let req = parse_request(&der).unwrap();
    let resp = respond(
        &pki,
        SigAlg::EcdsaP256Sha256,
        &req,
        &[CertState::Good],
        None,
    );
    let path = pki.write("resp.der", &resp);
    let shown = openssl_ok(&["ocsp", "-respin", &path, "-resp_text", "-noverify"]);
    let key_hash = hex::encode_upper(issuer.responder_key_hash());
    assert!(
        shown.contains(&format!("Responder Id: {key_hash}")),
        "byKey responder id {key_hash}:\n{shown}"
    );
    for needle in [
        "OCSP Response Status: successful (0x0)",
        "Response Type: Basic OCSP Response",
        "Version: 1 (0x0)",
        "Produced At:",
        "Hash Algorithm: sha1",
        &format!("Serial Number: {}", hex::encode_upper(SERIAL)),
        "Cert Status: good",
        "Signature Algorithm: ecdsa-with-SHA256",
    ] {
        assert!(shown.contains(needle), "missing {needle:?}:\n{shown}");
    }
    assert!(
        !shown.contains("Certificate:"),
        "no certs are embedded:\n{shown}"
    );
    // ecdsa-with-SHA256 AlgorithmIdentifier without parameters (no NULL) in the DER.
    let alg = [
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    assert!(resp.windows(alg.len()).any(|w| w == alg));
}

#[test]
fn error_responses_read_in_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    for (status, name) in [
        (ErrorStatus::MalformedRequest, "malformedrequest (1)"),
        (ErrorStatus::InternalError, "internalerror (2)"),
        (ErrorStatus::TryLater, "trylater (3)"),
        (ErrorStatus::Unauthorized, "unauthorized (6)"),
    ] {
        let p = tmp.path().join("err.der");
        std::fs::write(&p, error_response(status)).unwrap();
        let out = text(&openssl(&[
            "ocsp",
            "-respin",
            p.to_str().unwrap(),
            "-resp_text",
            "-noverify",
        ]));
        assert!(
            out.to_lowercase()
                .contains(&format!("responder error: {name}")),
            "{status:?}:\n{out}"
        );
    }
}

#[test]
fn seventeen_cert_ids_are_refused_sixteen_accepted() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, _) = pki.openssl_request("req16.der", &["leaf.pem"; 16], &["-no_nonce"]);
    assert_eq!(parse_request(&der).unwrap().cert_ids.len(), 16);
    let (der, _) = pki.openssl_request("req17.der", &["leaf.pem"; 17], &["-no_nonce"]);
    let err = parse_request(&der).unwrap_err();
    assert_eq!(err, OcspError::TooManyCertIds(17));
    assert_eq!(err.status(), ErrorStatus::MalformedRequest);
}

#[test]
fn truncated_and_oversized_requests_are_errors() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (der, _) = pki.openssl_request("req.der", &["leaf.pem", "leaf2.pem"], &[]);
    parse_request(&der).unwrap();
    for len in 0..der.len() {
        assert!(
            parse_request(&der[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(parse_request(&trailing).is_err(), "trailing byte accepted");
    assert_eq!(
        parse_request(&vec![0x30; MAX_REQUEST_BYTES + 1]),
        Err(OcspError::TooLarge(MAX_REQUEST_BYTES + 1))
    );
    // A BER (non-DER) length form is refused: long-form length for a short body.
    let (small, _) = pki.openssl_request("small.der", &["leaf.pem"], &["-no_nonce"]);
    parse_request(&small).unwrap();
    assert!(small[1] < 0x80, "expected a short-form outer length");
    let mut ber = vec![0x30, 0x81, small[1]];
    ber.extend_from_slice(&small[2..]);
    assert!(matches!(parse_request(&ber), Err(OcspError::Malformed(_))));
}

fn sample_request() -> &'static [u8] {
    use std::sync::OnceLock;
    static REQ: OnceLock<Vec<u8>> = OnceLock::new();
    REQ.get_or_init(|| {
        let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        pki.openssl_request("req.der", &["leaf.pem", "leaf2.pem"], &[])
            .0
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn mutated_requests_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)
    ) {
        let mut req = sample_request().to_vec();
        for (at, byte) in edits {
            let i = at % req.len();
            req[i] = byte;
        }
        if let Ok(parsed) = parse_request(&req) {
            prop_assert!(!parsed.cert_ids.is_empty() && parsed.cert_ids.len() <= 16);
            prop_assert!(parsed.nonce.as_ref().is_none_or(|n| !n.is_empty() && n.len() <= 32));
            // Whatever parsed re-encodes: every CertID is valid DER on its own.
            for id in &parsed.cert_ids {
                let cid = x509_ocsp::CertId::from_der(id.der()).unwrap();
                prop_assert_eq!(cid.to_der().unwrap(), id.der().to_vec());
            }
        }
    }
}

fn crl_fixture(pki: &Pki, crl_number: u64) -> (Vec<u8>, String) {
    let t = now();
    let entries = [
        CrlEntry {
            serial: SERIAL.to_vec(),
            revoked_at: t - 120,
            reason: Some(KEY_COMPROMISE),
        },
        CrlEntry {
            serial: vec![0x51; 16],
            revoked_at: t - 60,
            reason: None,
        },
    ];
    let der = build_crl(
        &pki.ca_der,
        &pki.ca_key,
        CRL_URL,
        &entries,
        t - 60,
        t + 3600,
        crl_number,
    )
    .unwrap();
    let der_path = pki.write("crl.der", &der);
    std::fs::write(pki.dir.join("crl.pem"), pem("X509 CRL", &der)).unwrap();
    (der, der_path)
}

fn verify_with_crl(pki: &Pki, leaf: &str) -> (bool, String) {
    let out = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &pki.path("crl.pem"),
        "-CAfile",
        &pki.path("ca.pem"),
        &pki.path(leaf),
    ]);
    (out.status.success(), text(&out))
}

#[test]
fn crl_verifies_and_revokes_the_leaf_in_openssl() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (_, der_path) = crl_fixture(&pki, 42);

    let out = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der_path,
        "-CAfile",
        &pki.path("ca.pem"),
        "-noout",
    ]);
    assert!(out.contains("verify OK"), "{out}");

    let (ok, out) = verify_with_crl(&pki, "leaf.pem");
    assert!(!ok, "revoked leaf verified:\n{out}");
    assert!(out.contains("certificate revoked"), "{out}");

    let (ok, out) = verify_with_crl(&pki, "leaf2.pem");
    assert!(ok, "unrevoked leaf failed:\n{out}");
    assert!(out.contains("leaf2.pem: OK"), "{out}");

    // The IDP scopes the CRL to CRL_URL: a certificate pointing elsewhere is not covered.
    let (ok, out) = verify_with_crl(&pki, "otherdp.pem");
    assert!(!ok, "out-of-scope CRL accepted:\n{out}");
    assert!(out.contains("different CRL scope"), "{out}");
}

#[test]
fn crl_text_shows_mandatory_fields() {
    let pki = Pki::new(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (_, der_path) = crl_fixture(&pki, 42);
    let shown = openssl_ok(&["crl", "-inform", "DER", "-in", &der_path, "-noout", "-text"]);
    for needle in [
        "Version 2 (0x1)",
        "Signature Algorithm: ecdsa-with-SHA256",
        "Issuer: CN = credmint status test root, O = credmint",
        "Last Update:",
        "Next Update:",
        "X509v3 CRL Number:",
        "42",
        "X509v3 Authority Key Identifier:",
        "X509v3 Issuing Distribution Point: critical",
        &format!("URI:{CRL_URL}"),
        &hex::encode_upper(SERIAL),
        &hex::encode_upper([0x51; 16]),
        "Key Compromise",
    ] {
        assert!(shown.contains(needle), "missing {needle:?}:\n{shown}");
    }
    assert_eq!(
        shown.matches("X509v3 CRL Reason Code").count(),
        1,
        "reason only where given:\n{shown}"
    );
    // AKI keyid equals the CA's subject key identifier.
    let ca_text = openssl_ok(&["x509", "-in", &pki.path("ca.pem"), "-noout", "-text"]);
    let ski = ca_text
        .split("X509v3 Subject Key Identifier:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("CA has an SKI")
        .to_owned();
    assert!(shown.contains(&ski), "AKI must carry SKI {ski}:\n{shown}");
}

#[test]
fn ed25519_crl_verifies_in_openssl() {
    let pki = Pki::new(&rcgen::PKCS_ED25519);
    let (_, der_path) = crl_fixture(&pki, 7);
    let out = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der_path,
        "-CAfile",
        &pki.path("ca.pem"),
        "-noout",
    ]);
    assert!(out.contains("verify OK"), "{out}");
    let (ok, out) = verify_with_crl(&pki, "leaf.pem");
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify_with_crl(&pki, "leaf2.pem");
    assert!(ok, "{out}");
}
