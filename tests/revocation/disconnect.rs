//! A client that disconnects right after sending its revocation cannot leave a committed
//! revocation behind caches that still say "good": the sequencer drops the cached answers
//! before it answers anyone, whether or not anyone is still listening.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{leaf_serial, raw_tls, Served, TestAppliance};
use crate::support::registered_workload;

fn ocsp_says(s: &Served, dir: &std::path::Path, leaf: &str) -> String {
    let ca = dir.join("ca.pem");
    let port = s.running.as_ref().unwrap().addr.port();
    let (ok, out) = crate::common::openssl_ocsp(port, ca.to_str().unwrap(), leaf);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

async fn json_status(s: &Served, serial: &str) -> String {
    let (_, v) = s.certificate_status(serial).await;
    v["status"].as_str().unwrap_or_default().to_string()
}

async fn crl_lists(s: &Served, serial: &str) -> bool {
    let der = crate::common::fetch(&s.anonymous(), &s.url("/crl")).await;
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    let listed = crl
        .iter_revoked_certificates()
        .any(|r| hex::encode(r.raw_serial()) == serial);
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_whose_client_disconnects_is_visible_on_every_channel_within_a_second() {
    let s = TestAppliance::new("disconnect").serve().await;
    let wl = registered_workload(&s, "leaver").await;
    let serial = leaf_serial(&wl.chain_pem);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &s.ca_pem).unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &wl.chain_pem).unwrap();
    let leaf = leaf.to_str().unwrap().to_string();

    // Warm every cache with "good".
    assert!(ocsp_says(&s, dir.path(), &leaf).contains(": good"));
    assert_eq!(json_status(&s, &serial).await, "good");
    assert!(!crl_lists(&s, &serial).await);

    // The operator sends the revocation and hangs up without reading the answer.
    let data = s.app.data();
    let chain = std::fs::read_to_string(data.join("operator-admin.pem")).unwrap();
    let key = std::fs::read_to_string(data.join("operator-admin-key.pem")).unwrap();
    let body = json!({"reason": "keyCompromise"}).to_string();
    let request = format!(
        "POST /v1/admin/certificates/{serial}/revoke HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tls = raw_tls(&s, Some((&chain, &key)));
    tls.write_all(request.as_bytes()).unwrap();
    tls.flush().unwrap();
    drop(tls);
    let sent = Instant::now();

    // Every channel says revoked within one second; no channel ever says good again
    // once one of them said revoked.
    let deadline = sent + Duration::from_secs(1);
    let mut seen_revoked = false;
    loop {
        let json = json_status(&s, &serial).await;
        let ocsp = ocsp_says(&s, dir.path(), &leaf);
        let crl = crl_lists(&s, &serial).await;
        // The caches are invalidated right after the commit the JSON status reads, so once
        // a cache (OCSP, CRL) said revoked, no channel may say good again.
        let any = ocsp.contains(": revoked") || crl;
        assert!(
            !(seen_revoked && (json == "good" || ocsp.contains(": good"))),
            "good after revoked: json {json}, ocsp {ocsp}"
        );
        seen_revoked |= any;
        if json == "revoked" && ocsp.contains(": revoked") && crl {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after {:?}: json {json}, crl {crl}, ocsp {ocsp}",
            sent.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}
