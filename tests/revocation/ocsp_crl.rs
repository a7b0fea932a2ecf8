//! OCSP and CRL checked by openssl against the live appliance.

use crate::common::{openssl, openssl_csr, Served, TestAppliance};
use crate::support::registered_workload;

fn write(s: &Served, dir: &std::path::Path, name: &str, pem: &str) -> String {
    let _ = s;
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p.to_string_lossy().into_owned()
}

fn leaf_pem(chain: &str) -> String {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_string()
}

/// `openssl ocsp ... -url https://127.0.0.1:PORT/ocsp` (a real HTTPS round trip).
fn ocsp_query(s: &Served, ca: &str, cert_args: &[&str]) -> String {
    let url = format!(
        "https://127.0.0.1:{}/ocsp",
        s.running.as_ref().unwrap().addr.port()
    );
    let mut args = vec!["ocsp", "-issuer", ca, "-CAfile", ca, "-url", &url];
    args.extend_from_slice(cert_args);
    let (ok, out) = openssl(&args);
    assert!(ok, "openssl ocsp failed: {out}");
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_good_revoked_and_unknown_over_ocsp_and_crl() {
    let s = TestAppliance::new("ocsp").serve().await;
    let live = registered_workload(&s, "web").await;
    let doomed = registered_workload(&s, "batch").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = write(&s, dir, "ca.pem", std::str::from_utf8(&s.ca_pem).unwrap());
    let live_pem = write(&s, dir, "live.pem", &leaf_pem(&live.chain_pem));
    let doomed_pem = write(&s, dir, "doomed.pem", &leaf_pem(&doomed.chain_pem));

    let out = ocsp_query(&s, &ca, &["-cert", &doomed_pem]);
    assert!(out.contains(&format!("{doomed_pem}: good")), "{out}");

    doomed.revoke_self(&s, "keyCompromise").await;

    let out = ocsp_query(&s, &ca, &["-cert", &doomed_pem]);
    assert!(out.contains(&format!("{doomed_pem}: revoked")), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    let out = ocsp_query(&s, &ca, &["-cert", &live_pem, "-no_nonce"]);
    assert!(out.contains(&format!("{live_pem}: good")), "{out}");
    // SHA-256 CertIDs are answered with SHA-256 CertIDs.
    let out = ocsp_query(&s, &ca, &["-sha256", "-cert", &live_pem]);
    assert!(out.contains(&format!("{live_pem}: good")), "{out}");
    // A serial this CA never issued is unknown, never good.
    let out = ocsp_query(&s, &ca, &["-serial", "0x7f00112233445566778899aabbccddee"]);
    assert!(out.contains(": unknown"), "{out}");

    // GET form (RFC 6960 A.1) with a request made by openssl.
    let req = dir.join("req.der");
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-cert",
        &doomed_pem,
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let encoded: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".into(),
            '/' => "%2F".into(),
            '=' => "%3D".into(),
            c => c.to_string(),
        })
        .collect();
    let resp = s
        .anonymous()
        .get(s.url(&format!("/ocsp/{encoded}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/ocsp-response");
    let resp_path = dir.join("resp.der");
    std::fs::write(&resp_path, resp.bytes().await.unwrap()).unwrap();
    let (ok, out) = openssl(&[
        "ocsp",
        "-reqin",
        req.to_str().unwrap(),
        "-respin",
        resp_path.to_str().unwrap(),
        "-issuer",
        &ca,
        "-cert",
        &doomed_pem,
        "-CAfile",
        &ca,
    ]);
    assert!(ok && out.contains(": revoked"), "{out}");

    // Malformed requests get an OCSP malformedRequest answer, not a crash.
    let resp = s
        .anonymous()
        .post(s.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x03, 0x02, 0x01])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        &[0x30, 0x03, 0x0a, 0x01, 0x01],
        "malformedRequest"
    );
    // Oversized bodies: 413 with the JSON error body, decided on Content-Length before
    // the body is read (a raw client that writes only what the server reads, so the
    // answer is always observed: no BrokenPipe race).
    crate::common::assert_oversized_bodies_get_413(&s, "/ocsp", "application/ocsp-request", true);

    // The CRL: openssl verifies it, rejects the revoked certificate and accepts the live one.
    let resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let crl_der = dir.join("crl.der");
    std::fs::write(&crl_der, resp.bytes().await.unwrap()).unwrap();
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-CAfile",
        &ca,
        "-noout",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let crl_pem = dir.join("crl.pem");
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-out",
        crl_pem.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        crl_pem.to_str().unwrap(),
        "-CAfile",
        &ca,
        &doomed_pem,
    ]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        crl_pem.to_str().unwrap(),
        "-CAfile",
        &ca,
        &live_pem,
    ]);
    assert!(ok, "{out}");
    let (_, text) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_der.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("Next Update"),
        "{text}"
    );
    let _ = openssl_csr;
    s.stop().await;
}
