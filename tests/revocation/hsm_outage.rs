//! The SoftHSM token directory taken away from a running `credmint serve` and given back:
//! `/healthz` reports the outage, issuance answers 503 and works again without a restart,
//! and a revocation accepted during the outage reaches the CRL (openssl) and OCSP (openssl)
//! once the HSM is back.

use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

use crate::common::{metric_value, openssl, openssl_csr, Served};
use crate::support::{enroll, enrollment_token, registered_workload};

/// `/healthz` status and body.
async fn health(s: &Served) -> (u16, Value) {
    let resp = s.anonymous().get(s.url("/healthz")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Polls `/healthz` until it answers `want`; returns how long that took.
async fn health_becomes(s: &Served, want: u16, within: Duration) -> (Duration, Value) {
    let started = Instant::now();
    loop {
        let (status, body) = health(s).await;
        if status == want {
            return (started.elapsed(), body);
        }
        assert!(
            started.elapsed() < within,
            "/healthz still {status} {body} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ocsp(s: &Served, ca: &str, cert: &str) -> String {
    crate::common::openssl_ocsp(s.port(), ca, cert).1
}

fn leaf_serial_hex(chain_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(chain_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    hex::encode_upper(cert.tbs_certificate.raw_serial())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_directory_lost_and_restored_degrades_then_recovers_without_restart() {
    let (s, mut server) = Served::spawned("outage");
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &s.ca_pem).unwrap();
    let ca = ca.to_str().unwrap().to_string();
    let doomed = registered_workload(&s, "outage-web").await;
    let doomed_pem = tmp.path().join("doomed.pem");
    std::fs::write(&doomed_pem, &doomed.chain_pem).unwrap();
    let doomed_pem = doomed_pem.to_str().unwrap().to_string();
    let serial = leaf_serial_hex(&doomed.chain_pem);
    // Enrollment tokens and CSRs need no HSM: made before, used during and after.
    let token = enrollment_token(&s, "outage-web").await;
    let csr = openssl_csr("ec", "");
    assert_eq!(health(&s).await.0, 200);
    let out = ocsp(&s, &ca, &doomed_pem);
    assert!(out.contains(&format!("{doomed_pem}: good")), "{out}");

    // The token directory goes away.
    let tokens = s.app.data().join("softhsm-tokens");
    assert!(tokens.is_dir(), "{}", tokens.display());
    let away = s.app.data().join("softhsm-tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    let (detected, body) = health_becomes(&s, 503, Duration::from_secs(8)).await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_ne!(body["hsm"], "ok", "{body}");
    assert!(body["ledger_size"].as_u64().unwrap() >= 3, "{body}");
    eprintln!("outage detected after {detected:?}: {body}");

    // Issuance: a precise 503, and the enrollment token is not spent.
    let resp = enroll(&s, &token, &csr, None).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "unavailable", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("HSM is unavailable"),
        "{err}"
    );
    assert!(err["hsm"].is_string() && err["hsm"] != "ok", "{err}");

    // A revocation needs only the ledger: accepted during the outage.
    let resp = s.revoke_certificate(&serial, "keyCompromise").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // Nothing signed can say so yet: no CRL without it, OCSP says tryLater.
    let resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let out = ocsp(&s, &ca, &doomed_pem);
    assert!(out.to_lowercase().contains("trylater"), "{out}");
    // ... and the metrics say so: tryLater counted, the HSM down, its failures by kind.
    let text = s.scrape_metrics().await;
    assert!(metric_value(&text, "credmint_ocsp_responses_total{status=\"tryLater\"}") >= 1.0);
    assert_eq!(metric_value(&text, "credmint_hsm_available"), 0.0);
    assert!(
        text.lines()
            .any(|l| l.starts_with("credmint_hsm_errors_total{kind=\"")),
        "{text}"
    );
    // Still degraded a while later (reconnection attempts keep failing).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = health(&s).await;
    assert_eq!(status, 503, "{body}");
    eprintln!("still degraded: {body}");

    // The directory comes back: healthy within the backoff bound, no restart.
    std::fs::rename(&away, &tokens).unwrap();
    let bound = credmint::hsm::RECONNECT_MAX + Duration::from_secs(5);
    let (recovered, body) = health_becomes(&s, 200, bound).await;
    assert_eq!(body["hsm"], "ok", "{body}");
    eprintln!("healthy again {recovered:?} after the token directory came back");
    // The status cache does not wait for a query: it signs what the outage left unsigned.
    server.wait_for(
        "HSM back: signing the status answers",
        Duration::from_secs(5),
    );

    // The same enrollment token now issues.
    let resp = enroll(&s, &token, &csr, None).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let fresh = resp.text().await.unwrap();
    let fresh_pem = tmp.path().join("fresh.pem");
    std::fs::write(&fresh_pem, &fresh).unwrap();
    let (ok, out) = openssl(&["verify", "-CAfile", &ca, fresh_pem.to_str().unwrap()]);
    assert!(ok, "{out}");

    // The CRL lists the serial revoked during the outage (openssl checks its signature).
    let resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    crate::common::assert_crl_lists(tmp.path(), &resp.bytes().await.unwrap(), &ca, &serial);
    // OCSP says revoked.
    let out = ocsp(&s, &ca, &doomed_pem);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{doomed_pem}: revoked")), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");

    assert!(server.lines.iter().any(|l| l.contains("HSM reconnected")));
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status:?}: {log:?}");
}
