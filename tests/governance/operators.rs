//! Operator minting under dual control: a new operator is a request until a different,
//! independent operator approves it, and an operator minted on the request of (or
//! approved by) the requester can never approve that requester's increases.

use serde_json::json;

use crate::common::{openssl_csr, TestAppliance};
use crate::helpers::{assert_audit_clean, get, mint_operator, post};
use crate::support::registered_workload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operator_cannot_mint_a_puppet_and_approve_its_own_increase_with_it() {
    let s = TestAppliance::new("gov-opmint").serve().await;
    registered_workload(&s, "deployer").await;
    let admin = s.operator();
    let admin2 = s.operator2();

    // The bypass of old: admin asks for "puppet" with a key it holds...
    let csr = openssl_csr("ec", "");
    let (status, body) = post(
        &admin,
        &s,
        "/v1/admin/operators",
        json!({"name": "puppet", "csr": csr.csr_pem, "approval_ref": "CHG-1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "pending");
    let index = body["request_index"].as_u64().unwrap();
    // ... which is only a request: admin cannot approve it itself ...
    let (status, body) = post(
        &admin,
        &s,
        &format!("/v1/admin/operators/requests/{index}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("self-approval"));
    let (_, pending) = get(&admin2, &s, "/v1/admin/operators/requests").await;
    assert_eq!(pending["requests"][0]["name"], "puppet");
    assert_eq!(pending["requests"][0]["requested_by"], "operator:admin");

    // ... and once admin2 lets "puppet" in, puppet still cannot approve admin's increase
    // (it was minted on admin's request), nor admin2's (admin2 approved it).
    let puppet = mint_operator(&s, &admin, &admin2, "puppet2").await;
    let (status, req) = post(
        &admin,
        &s,
        "/v1/admin/integrations/deployer/changes",
        json!({"scopes": ["deploy:read", "deploy:write", "deploy:admin"], "reason": "more power"}),
    )
    .await;
    assert_eq!(status, 202, "{req}");
    let change = req["request_index"].as_u64().unwrap();
    let (status, body) = post(
        &puppet,
        &s,
        &format!("/v1/admin/changes/{change}/approve"),
        json!({"approval_ref": "CHG-2"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("request chain"),
        "{body}"
    );
    // Nor may it approve admin2's increases (admin2 let it in) ...
    let (status, req2) = post(
        &admin2,
        &s,
        "/v1/admin/integrations/deployer/changes",
        json!({"dns_names": ["deploy.example.com"], "reason": "a name"}),
    )
    .await;
    assert_eq!(status, 202, "{req2}");
    let (status, body) = post(
        &puppet,
        &s,
        &format!("/v1/admin/changes/{}/approve", req2["request_index"]),
        json!({"approval_ref": "CHG-2b"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("approved or issued by"),
        "{body}"
    );
    // ... nor admin's operator requests: the sequencer applies the rule to operator mints
    // too, not only to integration changes.
    let (status, pending) = post(
        &admin,
        &s,
        "/v1/admin/operators",
        json!({"name": "another", "csr": openssl_csr("ec", "").csr_pem, "approval_ref": "CHG-4"}),
    )
    .await;
    assert_eq!(status, 202, "{pending}");
    let (status, body) = post(
        &puppet,
        &s,
        &format!(
            "/v1/admin/operators/requests/{}/approve",
            pending["request_index"]
        ),
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("request chain"),
        "{body}"
    );

    // The independent operator can.
    let (status, body) = post(
        &admin2,
        &s,
        &format!("/v1/admin/changes/{change}/approve"),
        json!({"approval_ref": "CHG-2"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved_by"], "operator:admin2");

    // A puppet's own request chain stays tainted: puppet asks for "puppet3", admin2
    // approves, and puppet3 may not approve admin's next increase either.
    let puppet3 = mint_operator(&s, &puppet, &admin2, "puppet3").await;
    let (status, req) = post(
        &admin,
        &s,
        "/v1/admin/integrations/deployer/changes",
        json!({"max_ttl_secs": 1800, "reason": "longer"}),
    )
    .await;
    assert_eq!(status, 202, "{req}");
    let change = req["request_index"].as_u64().unwrap();
    let (status, body) = post(
        &puppet3,
        &s,
        &format!("/v1/admin/changes/{change}/approve"),
        json!({"approval_ref": "CHG-3"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_audit_clean(&s).await;
    s.stop().await;
}
