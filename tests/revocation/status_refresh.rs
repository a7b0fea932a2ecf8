//! The status refresher and the CRL number: one failed pre-signature never drops the other
//! serials, and CRL numbers strictly increase across concurrent builds and restarts.

use std::time::{Duration, Instant};

use rustls::pki_types::{pem::PemObject, CertificateDer};

use crate::common::{captured_logs, TestAppliance};
use crate::support::registered_workload;

fn crl_number(der: &[u8]) -> u64 {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.crl_number().unwrap().to_string().parse().unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_presign_does_not_drop_the_other_serials_and_is_retried() {
    let s = TestAppliance::new("presign").serve().await;
    let wl = registered_workload(&s, "presign-web").await;
    let der = CertificateDer::from_pem_slice(wl.chain_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let good = cert.tbs_certificate.raw_serial().to_vec();
    let status = s.state().status.clone();
    // Let the refresher's first pass finish, then queue a serial no CertID can carry
    // (41 octets) ahead of a real one.
    wait_until("initial CRL", Duration::from_secs(10), || {
        status.crl(0).is_some()
    })
    .await;
    let bogus = vec![0x55u8; 41];
    let failures_before = status.presign_failures();
    status.invalidate(&[bogus, good.clone()]);
    wait_until(
        "the real serial pre-signed",
        Duration::from_secs(10),
        || status.has_cached_answer(&good),
    )
    .await;
    assert!(status.presign_failures() > failures_before);
    // The failure is retried a bounded number of times, then left to query time.
    let attempts = u64::from(credmint::status::cache::PRESIGN_ATTEMPTS);
    wait_until("retries exhausted", Duration::from_secs(30), || {
        status.presign_pending() == 0 && status.presign_failures() >= failures_before + attempts
    })
    .await;
    let logs = captured_logs();
    assert!(
        logs.contains("OCSP pre-signing failed; will retry"),
        "{logs}"
    );
    assert!(logs.contains("giving up"), "{logs}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_numbers_strictly_increase_across_concurrent_builds_and_restarts() {
    let mut s = TestAppliance::new("crlnum").serve().await;
    // Concurrent builds: every number distinct, and the published CRL carries the highest.
    let mut threads = Vec::new();
    for _ in 0..4 {
        let state = s.state().clone();
        threads.push(std::thread::spawn(move || {
            (0..10)
                .map(|_| {
                    let crl = credmint::status::cache::rebuild_crl(&state, 0).unwrap();
                    assert_eq!(crl_number(&crl.der), crl.number);
                    crl.number
                })
                .collect::<Vec<u64>>()
        }));
    }
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "CRL numbers repeated: {all:?}");
    let last = *all.last().unwrap();
    // 40 CRLs within a few seconds: the number runs ahead of the Unix time.
    assert!(last > s.clock.unix() + 10, "{last}");
    let resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    let served = crl_number(&resp.bytes().await.unwrap());
    assert_eq!(served, last, "the published CRL is the newest");

    // Restart (with the clock even set back an hour): the next CRL is still above.
    let running = s.running.take().unwrap();
    running.shutdown(Duration::from_secs(5)).await.unwrap();
    let clock = credmint::clock::Clock::default();
    clock.advance(-3600);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = credmint::serve::start_with_clock(s.app.config(), Some(listener), clock.clone())
        .await
        .unwrap();
    s.base = format!("https://localhost:{}", running.addr.port());
    s.running = Some(running);
    s.clock = clock;
    let resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let after = crl_number(&resp.bytes().await.unwrap());
    assert!(
        after > last,
        "CRL number went back after a restart: {after} <= {last}"
    );
    s.stop().await;
}
