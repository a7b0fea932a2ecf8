//! The plain-HTTP status listener (`server.status_listen`): OCSP and the CRL over
//! `http://`, named by the certificates' AIA and CDP, nothing else on it.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::{openssl, openssl_ocsp_at, Served, TestAppliance};
use crate::support::registered_workload;

const NAMES: &str = "names = [\"localhost\", \"127.0.0.1\"]";

async fn serve_with_status_listener(name: &str) -> (Served, u16) {
    let app = TestAppliance::new(name);
    app.edit_config(
        NAMES,
        &format!("{NAMES}\nstatus_listen = \"127.0.0.1:0\"\nheader_read_timeout_secs = 1"),
    );
    let s = app.serve().await;
    let port = s.running.as_ref().unwrap().status_addr.unwrap().port();
    (s, port)
}

fn leaf_file(dir: &std::path::Path, chain: &str) -> String {
    let leaf = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    let p = dir.join("leaf.pem");
    std::fs::write(&p, leaf).unwrap();
    p.to_string_lossy().into_owned()
}

/// `openssl ocsp -url http://127.0.0.1:PORT/ocsp`: no TLS anywhere on the way.
fn plain_ocsp(port: u16, ca: &str, leaf: &str) -> String {
    let (ok, out) = openssl_ocsp_at(&format!("http://127.0.0.1:{port}/ocsp"), ca, leaf);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_and_crl_are_served_over_plain_http_and_named_in_certificates() {
    let (s, port) = serve_with_status_listener("plainhttp").await;
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, &s.ca_pem).unwrap();
    let ca = ca.to_string_lossy().into_owned();
    let w = registered_workload(&s, "web").await;
    let leaf = leaf_file(tmp.path(), &w.chain_pem);

    let (ok, text) = openssl(&["x509", "-in", &leaf, "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("OCSP - URI:http://localhost:{port}/ocsp")),
        "{text}"
    );
    assert!(
        text.contains(&format!("URI:http://localhost:{port}/crl")),
        "{text}"
    );

    let out = plain_ocsp(port, &ca, &leaf);
    assert!(out.contains(&format!("{leaf}: good")), "{out}");
    w.revoke_self(&s, "keyCompromise").await;
    let out = plain_ocsp(port, &ca, &leaf);
    assert!(out.contains(&format!("{leaf}: revoked")), "{out}");

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let resp = http.get(format!("{base}/crl")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pkix-crl");
    let der = resp.bytes().await.unwrap();
    let (_, serial) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    crate::common::assert_crl_lists(tmp.path(), &der, &ca, serial);

    // Only status lives here: the API, the CA bundle and health are not served.
    for path in [
        "/v1/ca.pem",
        "/v1/enroll",
        "/healthz",
        "/v1/ledger/checkpoint",
    ] {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}: {body}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_listener_is_under_the_edge_caps_and_timeouts() {
    let (s, port) = serve_with_status_listener("plainedge").await;
    let running = s.running.as_ref().unwrap();
    let before = running.edge_stats().open;
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(running.edge_stats().open, before + 1, "counted in the caps");
    // header_read_timeout_secs = 1: a connection that never sends a request is closed.
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "{:?}",
        &buf[..n]
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    s.stop().await;
}
