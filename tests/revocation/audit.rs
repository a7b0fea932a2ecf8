//! A bundle exported from a real appliance run verifies offline with only the pinned
//! genesis ledger key, with no semantic violation; a flipped byte is caught.

use credmint_ledger::audit::Outcome;
use serde_json::json;

use crate::common::{assert_verifies, audit, TestAppliance};
use crate::support::registered_workload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_bundle_of_a_real_run_verifies_offline() {
    let s = TestAppliance::new("audit").serve().await;
    let genesis_key = s.state().ledger.ledger_key();
    let w = registered_workload(&s, "exporter").await;
    let client = w.client(&s);
    let renew = client
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": w.csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(renew.status(), 201);
    let tok = client
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "a", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 201);
    let op = s.operator();
    for verb in ["suspend", "resume"] {
        let r = op
            .post(s.url(&format!("/v1/admin/integrations/exporter/{verb}")))
            .json(&json!({"reason": "drill"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client
        .post(s.url("/v1/revoke"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reuse of the revoked certificate adds a signal event too.
    let r = client
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "a", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let bundle = s.export_bundle().await;
    let report = assert_verifies(&bundle, genesis_key);
    assert_eq!(
        report.records,
        s.state().ledger.size(),
        "export covers every record"
    );

    let mut tampered = bundle.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x20;
    let report = audit(&tampered, genesis_key);
    assert!(
        matches!(report.outcome, Outcome::Tampered | Outcome::Unreadable),
        "{:?}",
        report.outcome
    );

    // A workload certificate cannot export the ledger.
    let r = client
        .get(s.url("/v1/admin/ledger/export"))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 401 || r.status() == 403);
    s.stop().await;
}
