//! `/healthz` is answered from the cached result of a background HSM probe: anonymous
//! requests never take an HSM session.

use std::time::{Duration, Instant};

use crate::common::TestAppliance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_served_from_the_background_probe_not_per_request() {
    let s = TestAppliance::new("health").serve().await;
    let hsm = s.state().hsm.clone();
    let http = s.anonymous();
    let before = hsm.probe_count();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let (http, url) = (http.clone(), s.url("/healthz"));
        tasks.push(tokio::spawn(async move {
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }));
    }
    for t in tasks {
        let body = t.await.unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["hsm"], "ok");
        assert_eq!(body["ledger"], "ok");
        assert!(body["ledger_size"].as_u64().unwrap() >= 2, "{body}");
        assert_eq!(body.as_object().unwrap().len(), 4, "same fields: {body}");
    }
    let elapsed = started.elapsed();
    let probes = hsm.probe_count() - before;
    let interval = credmint::hsm::HEALTH_PROBE_INTERVAL;
    let allowed = elapsed.as_millis() / interval.as_millis() + 2;
    assert!(
        u128::from(probes) <= allowed,
        "{probes} HSM probes for 300 requests in {elapsed:?}"
    );
    // The probe keeps running in the background and its result is what is reported.
    let count = hsm.probe_count();
    tokio::time::sleep(interval * 2 + Duration::from_millis(500)).await;
    assert!(hsm.probe_count() > count, "background probe ran");
    let last = hsm.last_probe().expect("a probe result");
    assert!(last.result.is_ok() && last.at.elapsed() <= interval * 2);
    s.stop().await;
}
