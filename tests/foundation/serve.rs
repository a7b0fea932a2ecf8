//! The HTTPS listener: rustls clients that trust only the CA reach it, the checkpoint is a
//! signed note verifiable with the genesis ledger key, and SIGTERM stops it cleanly.

use std::process::Command;
use std::time::Duration;

use crate::common::{free_port, require_tool, text, TestAppliance};

fn client(ca_pem: &[u8], max_tls12: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .timeout(Duration::from_secs(10));
    if max_tls12 {
        b = b.tls_version_max(reqwest::tls::Version::TLS_1_2);
    }
    b.build().unwrap()
}

fn genesis_ledger_key(app: &TestAppliance) -> [u8; 32] {
    crate::common::genesis_ledger_key(&app.data().join("ledger.redb"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_healthz_and_signed_checkpoint() {
    let app = TestAppliance::new("serve");
    app.init_in_process();
    let pinned = genesis_ledger_key(&app);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = credmint::serve::start(app.config(), Some(listener))
        .await
        .unwrap();
    let ca = std::fs::read(app.data().join("ca.pem")).unwrap();
    let base = format!("https://localhost:{}", running.addr.port());

    for tls12 in [false, true] {
        let resp = client(&ca, tls12)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["hsm"], "ok");
        assert_eq!(
            body["ledger_size"], 3,
            "genesis + the two init operators' certificates"
        );
    }

    let resp = client(&ca, false)
        .get(format!("{base}/v1/ledger/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let note = resp.text().await.unwrap();
    let checkpoint =
        credmint_ledger::checkpoint::open(&note, "test.credmint.local/credmint-ledger", &pinned)
            .expect("checkpoint verifies with the genesis ledger key");
    assert_eq!(checkpoint.size, 3);
    let other = [9u8; 32];
    assert!(credmint_ledger::checkpoint::open(
        &note,
        "test.credmint.local/credmint-ledger",
        &other
    )
    .is_err());

    // A client that does not trust this CA is refused.
    let stranger = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&stranger_ca()).unwrap()])
        .build()
        .unwrap();
    assert!(stranger
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());

    running.shutdown(Duration::from_secs(5)).await.unwrap();

    // openssl agrees the server certificate chains to the CA.
    let out = Command::new(require_tool("openssl"))
        .args(["verify", "-CAfile"])
        .arg(app.data().join("ca.pem"))
        .arg(app.data().join("server.pem"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A throwaway self-signed CA that signed nothing of ours.
fn stranger_ca() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem().into_bytes()
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let app = TestAppliance::with_listen("sigterm", &format!("127.0.0.1:{}", free_port()));
    let server = app.spawn_server();
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status:?}: {log:?}");
    assert!(
        log.iter().any(|l| l.contains("credmint stopped")),
        "{log:?}"
    );
}

/// The leaf certificate the listener on `port` presents (openssl s_client, no trust needed).
fn served_leaf(port: u16) -> x509_parser::pem::Pem {
    let (_, out) = crate::common::openssl(&[
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        "-servername",
        "localhost",
    ]);
    let begin = out
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("{out}"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(&out.as_bytes()[begin..]).unwrap();
    pem
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_is_renewed_while_serving_when_due() {
    let s = TestAppliance::new("srvrenew").serve().await;
    let port = s.running.as_ref().unwrap().addr.port();
    let before = served_leaf(port);
    let state = s.state().clone();
    // Not due: nothing issued, the same certificate is served.
    assert!(!tokio::task::spawn_blocking({
        let st = state.clone();
        move || credmint::rotation::listener::renew_if_due(&st)
    })
    .await
    .unwrap()
    .unwrap());
    // Four days later a 10-day certificate has fewer than 7 days left: renewed, and the
    // running listener presents the new one without a restart.
    s.clock.advance(4 * 86_400);
    assert!(
        tokio::task::spawn_blocking(move || credmint::rotation::listener::renew_if_due(&state))
            .await
            .unwrap()
            .unwrap()
    );
    let after = served_leaf(port);
    let (old, new) = (before.parse_x509().unwrap(), after.parse_x509().unwrap());
    assert_ne!(
        old.raw_serial(),
        new.raw_serial(),
        "a new certificate is served"
    );
    let gained = new.validity().not_after.timestamp() - old.validity().not_after.timestamp();
    assert!(
        (4 * 86_400 - 120..=4 * 86_400 + 120).contains(&gained),
        "{gained}"
    );
    let on_disk = std::fs::read(s.app.data().join("server.pem")).unwrap();
    let (_, disk) = x509_parser::pem::parse_x509_pem(&on_disk).unwrap();
    assert_eq!(
        disk.contents, after.contents,
        "the renewed certificate is kept on disk"
    );
    s.stop().await;
}
