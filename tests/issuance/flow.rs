//! register -> enroll -> certificate (openssl verify, x509 -text, rustls mTLS) -> renew ->
//! token (jsonwebtoken against the JWKS), and the ledger records each step.

use std::io::{Read, Write};
use std::sync::Arc;

use credmint_ledger::event::Event;
use serde_json::{json, Value};

use crate::common::{captured_logs, openssl, openssl_csr, TestAppliance};
use crate::support::{enroll, enrollment_token, register, registration, Enrolled};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_enroll_renew_and_get_tokens_end_to_end() {
    let s = TestAppliance::new("flow").serve().await;

    let resp = register(&s, &registration("ci-deploy")).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["spiffe_id"],
        "spiffe://test.credmint.local/prod/ci-deploy"
    );

    let token = enrollment_token(&s, "ci-deploy").await;
    assert!(token.starts_with("cmt_"));
    let csr = openssl_csr("ec", "DNS:ci-deploy.internal.example");
    let resp = enroll(&s, &token, &csr, Some(300)).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let serial_hex = resp.headers()["x-credmint-serial"]
        .to_str()
        .unwrap()
        .to_string();
    let chain = resp.text().await.unwrap();

    // openssl: chain verifies, and the fields are what the issue promises.
    let dir_buf = csr.dir.path().to_path_buf();
    let dir = dir_buf.as_path();
    let ca = write(dir, "ca.pem", std::str::from_utf8(&s.ca_pem).unwrap());
    let leaf_pem = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    let leaf = write(dir, "leaf.pem", leaf_pem);
    let (ok, out) = openssl(&["verify", "-CAfile", &ca, &leaf]);
    assert!(ok, "{out}");
    let (ok, txt) = openssl(&["x509", "-in", &leaf, "-noout", "-text"]);
    assert!(ok, "{txt}");
    for needle in [
        "URI:spiffe://test.credmint.local/prod/ci-deploy",
        "DNS:ci-deploy.internal.example",
        "TLS Web Client Authentication",
        "Digital Signature",
        "CA:FALSE",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        &format!("OCSP - URI:{}/ocsp", s.base),
        &format!("URI:{}/crl", s.base),
        // The governance extension under its PEN OID, non-critical (no "critical" mark).
        "1.3.6.1.4.1.32473.1.1: \n",
    ] {
        assert!(txt.contains(needle), "missing {needle:?} in\n{txt}");
    }
    assert!(!txt.contains("Key Encipherment"), "{txt}");
    assert!(!txt.contains("TLS Web Server Authentication"), "{txt}");
    let (_, dates) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-startdate",
        "-enddate",
        "-serial",
    ]);
    assert!(
        dates
            .to_lowercase()
            .contains(&format!("serial={serial_hex}")),
        "{dates}"
    );
    let governance = credmint::issue::Governance::parse_from_certificate(&x509_der(leaf_pem))
        .unwrap()
        .unwrap();
    assert_eq!(governance.integration, "ci-deploy");
    assert_eq!(governance.approval_ref, "CHG-1234");

    // A rustls server that trusts only the CA accepts the certificate in an mTLS handshake.
    rustls_mtls_handshake(&s.ca_pem, &chain, &csr.key_pem);

    // Renewal over mTLS with the current certificate.
    let workload = Enrolled {
        csr,
        chain_pem: chain.clone(),
    };
    let renew_csr = openssl_csr("ed25519", "");
    let resp = workload
        .client(&s)
        .post(s.url("/v1/renew"))
        .json(&json!({ "csr": renew_csr.csr_pem }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let renewed = resp.text().await.unwrap();
    let renewed_leaf = write(
        dir,
        "renewed.pem",
        renewed
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap(),
    );
    let (ok, out) = openssl(&["verify", "-CAfile", &ca, &renewed_leaf]);
    assert!(ok, "{out}");

    // A token, verified by jsonwebtoken against the published JWKS.
    let resp = workload
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&json!({ "audience": "deploy-api", "scopes": ["deploy:read"], "ttl_secs": 120 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let issued: Value = resp.json().await.unwrap();
    let jwt = issued["token"].as_str().unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = s
        .anonymous()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published in JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["deploy-api"]);
    validation.set_issuer(&[s.base.as_str()]);
    let data = jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("JWT verifies against the JWKS");
    let claims = data.claims;
    assert_eq!(claims["sub"], "spiffe://test.credmint.local/prod/ci-deploy");
    assert_eq!(claims["scope"], "deploy:read");
    assert_eq!(claims["env"], "prod");
    assert_eq!(claims["approval_ref"], "CHG-1234");
    assert_eq!(claims["jti"], issued["jti"]);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 120);
    let mut tampered = jwt.to_string();
    tampered.insert(jwt.find('.').unwrap() + 5, 'x');
    assert!(jsonwebtoken::decode::<Value>(
        &tampered,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation
    )
    .is_err());

    // Every step is in the ledger, in order, with its actor.
    let ledger = s.state().ledger.clone();
    let kinds: Vec<(String, &'static str)> = (0..ledger.size())
        .map(|i| {
            let r = ledger.record(i).unwrap().unwrap();
            (r.actor, r.event.kind())
        })
        .collect();
    let expect = [
        ("operator:admin", "integration_registered"),
        ("operator:admin", "enrollment_created"),
        ("enrollment:ci-deploy", "certificate_issued"),
        ("enrollment:ci-deploy", "enrollment_used"),
        ("workload:ci-deploy", "certificate_issued"),
        ("workload:ci-deploy", "token_issued"),
    ];
    let tail: Vec<(&str, &str)> = kinds[kinds.len() - expect.len()..]
        .iter()
        .map(|(a, k)| (a.as_str(), *k))
        .collect();
    assert_eq!(tail, expect);
    let Event::TokenIssued(t) = ledger.record(ledger.size() - 1).unwrap().unwrap().event else {
        panic!("last record is not a token")
    };
    assert_eq!(t.jti, issued["jti"].as_str().unwrap());
    credmint_ledger::verify_ledger(&ledger, &ledger.ledger_key()).expect("ledger verifies");

    // Neither the enrollment token, the PIN nor any private key reached the logs.
    let logs = captured_logs();
    assert!(
        logs.contains("certificate issued"),
        "logs were not captured"
    );
    for secret in [
        token.as_str(),
        s.app.user_pin().as_str(),
        "PRIVATE KEY",
        jwt,
    ] {
        assert!(!logs.contains(secret), "secret leaked into logs");
    }
    s.stop().await;
}

fn x509_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// A plain rustls server requiring client certificates from the CA, and a rustls client
/// presenting the issued chain, over a loopback TCP socket.
fn rustls_mtls_handshake(ca_pem: &[u8], chain_pem: &str, key_pem: &str) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let roots = Arc::new(roots);
    // Server side: its own throwaway certificate, client auth required against the CA.
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone()],
            PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).unwrap();
        tls.write_all(b"pong!").unwrap();
        tls.flush().unwrap();
        let peer = conn.peer_certificates().unwrap().len();
        assert!(peer >= 1, "client presented its certificate");
    });
    let mut server_roots = rustls::RootCertStore::empty();
    server_roots.add(server_cert.der().clone()).unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(server_roots)
        .with_client_auth_cert(
            chain,
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let mut conn = rustls::ClientConnection::new(
        Arc::new(client_config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(b"ping!").unwrap();
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong!");
    server.join().expect("server accepted the mTLS handshake");
}
