//! Dual control: decreases apply at once; any increase is a pending request, invisible to
//! issuance until a different operator approves it; self-approval is refused.

use credmint_ledger::event::{AnomalyKind, ChangeKind};
use serde_json::json;

use crate::common::TestAppliance;
use crate::helpers::{
    anomalies_of, assert_audit_clean, change_kinds, changes, get, post, token, wait_for_anomaly,
};
use crate::support::registered_workload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn increase_is_invisible_until_a_different_operator_approves_it() {
    let s = TestAppliance::new("gov-dual").serve().await;
    let w = registered_workload(&s, "deployer").await;
    let wl = w.client(&s);
    let alice = s.operator();

    let (status, req) = post(
        &alice,
        &s,
        "/v1/admin/integrations/deployer/changes",
        json!({"scopes": ["deploy:read", "deploy:write", "deploy:admin"], "reason": "release automation"}),
    )
    .await;
    assert_eq!(status, 202, "{req}");
    assert_eq!(req["status"], "pending");
    assert_eq!(req["changes"], json!(["scopes"]));
    let index = req["request_index"].as_u64().unwrap();

    // Invisible: the integration and issuance are unchanged.
    let (_, spec) = get(&alice, &s, "/v1/admin/integrations/deployer").await;
    assert_eq!(spec["scopes"], json!(["deploy:read", "deploy:write"]));
    let (status, body) = token(&wl, &s, &["deploy:admin"], None).await;
    assert_eq!(status, 403, "{body}");
    let (_, pending) = get(&alice, &s, "/v1/admin/changes").await;
    assert_eq!(pending["changes"][0]["request_index"], index);
    assert_eq!(pending["changes"][0]["requested_by"], "operator:admin");

    // The requester cannot approve their own request.
    let (status, body) = post(
        &alice,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({"approval_ref": "CAB-7"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("self-approval is refused"),
        "{body}"
    );
    let (status, _) = token(&wl, &s, &["deploy:admin"], None).await;
    assert_eq!(
        status, 403,
        "still invisible after the refused self-approval"
    );

    // A different operator approves, with an approval reference.
    let bob = s.operator2();
    let (status, body) = post(
        &bob,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "approval_ref");
    let (status, body) = post(
        &bob,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({"approval_ref": "CAB-7"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["approved_by"], "operator:admin2");
    let (status, body) = token(&wl, &s, &["deploy:admin"], None).await;
    assert_eq!(status, 201, "{body}");

    // Approving again, or a request that never existed.
    let (status, body) = post(
        &bob,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({"approval_ref": "CAB-7"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = post(
        &bob,
        &s,
        "/v1/admin/changes/1/approve",
        json!({"approval_ref": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    let (_, pending) = get(&alice, &s, "/v1/admin/changes").await;
    assert_eq!(pending["changes"], json!([]));

    // The ledger: the approval points at the request, by another operator, and the
    // expansion is a signal.
    let approved: Vec<_> = changes(&s, "deployer")
        .into_iter()
        .filter(|c| c.2.kind == ChangeKind::IncreaseApproved)
        .collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].2.request_index, index);
    assert_eq!(approved[0].2.reference, "CAB-7");
    assert_eq!(approved[0].1, "operator:admin2");
    let signal = wait_for_anomaly(&s, "deployer", AnomalyKind::PrivilegeExpansion).await;
    assert!(
        signal.detail.contains("adds scope \"deploy:admin\""),
        "{}",
        signal.detail
    );
    assert_audit_clean(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrease_applies_at_once_and_owner_change_names_old_and_new_owner() {
    let s = TestAppliance::new("gov-narrow").serve().await;
    let w = registered_workload(&s, "shrinker").await;
    let wl = w.client(&s);
    let op = s.operator();
    assert_eq!(token(&wl, &s, &["deploy:write"], None).await.0, 201);

    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"scopes": ["deploy:read"], "max_ttl_secs": 300, "reason": "least privilege"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!(["narrowed"]));
    // Immediate: no approval, no pending request.
    assert_eq!(token(&wl, &s, &["deploy:write"], None).await.0, 403);
    let (status, body) = token(&wl, &s, &["deploy:read"], Some(600)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(token(&wl, &s, &["deploy:read"], Some(300)).await.0, 201);
    let (_, pending) = get(&op, &s, "/v1/admin/changes").await;
    assert_eq!(pending["changes"], json!([]));

    // Owner change: recorded with the old and the new owner.
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"technical_owner": "carol@example.com", "reason": "team move"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["technical_owner"], "carol@example.com");
    let owner = changes(&s, "shrinker").pop().unwrap().2;
    assert_eq!(owner.kind, ChangeKind::OwnerChanged);
    assert!(
        owner
            .reference
            .contains("payments/alice@example.com -> payments/carol@example.com"),
        "{}",
        owner.reference
    );

    // Narrowing plus an owner change in one call: two events, one batch.
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"dns_names": [], "business_owner": "platform", "reason": "handover"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], json!(["narrowed", "owner_changed"]));

    // Mixed narrowing and increase: one pending request for the whole proposed state.
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"scopes": ["deploy:admin"], "reason": "swap"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let stale_index = body["request_index"].as_u64().unwrap();
    assert_eq!(
        token(&wl, &s, &["deploy:read"], None).await.0,
        201,
        "nothing changed yet"
    );
    // A later change makes the request stale: approving it is a conflict, not a rollback.
    let (status, _) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"max_ttl_secs": 200, "reason": "shorter"}),
    )
    .await;
    assert_eq!(status, 200);
    let bob = s.operator2();
    let (status, body) = post(
        &bob,
        &s,
        &format!("/v1/admin/changes/{stale_index}/approve"),
        json!({"approval_ref": "CAB-9"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("stale"),
        "{body}"
    );

    // Bad fields are named; nothing to change is said so.
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"scopes": ["deploy:read"]}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("reason")));
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/shrinker/changes",
        json!({"max_ttl_secs": 0, "reason": "x"}),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("max_ttl_secs"))
    );
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/nope/changes",
        json!({"reason": "x"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    assert_eq!(
        change_kinds(&s, "shrinker"),
        vec![
            ChangeKind::Narrowed,
            ChangeKind::OwnerChanged,
            ChangeKind::Narrowed,
            ChangeKind::OwnerChanged,
            ChangeKind::Narrowed
        ]
    );
    assert!(anomalies_of(&s, "shrinker", AnomalyKind::PrivilegeExpansion).is_empty());
    assert_audit_clean(&s).await;
    s.stop().await;
}
