//! Every request leaves one access-log line (route pattern, status, latency, peer, who
//! presented what), refusals included, and never a secret.

use serde_json::json;

use crate::common::{captured_logs, TestAppliance};
use crate::support::registered_workload;

fn access_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("credmint::access"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_logged_with_route_status_peer_and_actor_never_a_secret() {
    let s = TestAppliance::new("accesslog").serve().await;
    let w = registered_workload(&s, "access-log").await;
    let secret = "cmt_this-enrollment-token-must-never-be-logged-0123456789";
    let resp = s
        .anonymous()
        .post(s.url("/v1/enroll"))
        .bearer_auth(secret)
        .json(&json!({"csr": w.csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let serial = "00ff00ff00ff00ff";
    assert_eq!(s.certificate_status(serial).await.0, 404);
    let resp = s
        .anonymous()
        .get(s.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = w.mint_token(&s).await;
    assert_eq!(resp.status(), 201);

    let logs = captured_logs();
    let lines = access_lines(&logs);
    let find = |needles: &[&str]| {
        lines
            .iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no access line with {needles:?} in {lines:#?}"))
            .to_string()
    };
    let refused = find(&["route=/v1/enroll", "status=401", "actor=bearer"]);
    assert!(refused.contains("peer=127.0.0.1:"), "{refused}");
    assert!(refused.contains("method=POST") && refused.contains("latency_us="));
    // The route pattern: lines group by route, whatever the serial.
    find(&["route=/v1/status/{serial}", "status=404", "actor=-"]);
    find(&["route=(no route)", "status=404"]);
    find(&[
        "route=/v1/admin/integrations",
        "status=201",
        "actor=cert:spiffe://test.credmint.local/operator/admin#",
    ]);
    find(&["route=/v1/tokens", "status=201", "actor=cert:spiffe://"]);
    assert!(
        !logs.contains(secret),
        "an enrollment token reached the logs"
    );
    assert!(
        !logs.contains("this-enrollment-token"),
        "part of a token reached the logs"
    );
    s.stop().await;
}
