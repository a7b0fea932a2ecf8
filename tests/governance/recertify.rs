//! Recertification gate: past review-by, issuance and renewal are refused with a message
//! that says recertification is required; recertifying (within the class limit) restores
//! them.

use credmint_ledger::event::ChangeKind;
use serde_json::json;

use crate::common::TestAppliance;
use crate::helpers::{assert_audit_clean, at, change_kinds, get, post, token};
use crate::support::{assert_error, enrolled, register, registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_fails_after_review_by_and_works_again_after_recertify() {
    let s = TestAppliance::new("gov-recert").serve().await;
    let op = s.operator();
    let mut reg = registration("reviewed");
    reg["review_by"] = json!(at(&s, 600));
    let resp = register(&s, &reg).await;
    assert_eq!(resp.status(), 201);
    let w = enrolled(&s, "reviewed").await;
    let wl = w.client(&s);
    assert_eq!(token(&wl, &s, &["deploy:read"], None).await.0, 201);

    // Past review-by (the certificate itself is still valid).
    s.clock.advance(700);
    let (status, body) = token(&wl, &s, &["deploy:read"], None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("recertification is required"),
        "{body}"
    );
    let renew = wl
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": w.csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(renew, 403, "recertification is required").await;
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/reviewed/enrollments",
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, inv) = get(&op, &s, "/v1/admin/integrations?overdue=true").await;
    assert_eq!(inv["integrations"][0]["name"], "reviewed");
    assert_eq!(inv["integrations"][0]["review_state"], "overdue");

    // Limits: in the future, at most 365 days for a routine integration; reference needed.
    let path = "/v1/admin/integrations/reviewed/recertify";
    let cases = [
        (
            json!({"review_by": at(&s, -10), "reference": "REV-1"}),
            "review_by",
        ),
        (
            json!({"review_by": at(&s, 400 * 86_400), "reference": "REV-1"}),
            "review_by",
        ),
        (
            json!({"review_by": "someday", "reference": "REV-1"}),
            "review_by",
        ),
        (json!({"review_by": at(&s, 86_400)}), "reference"),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&op, &s, path, body.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{body} -> {answer}"
        );
    }
    let (status, body) = post(
        &op,
        &s,
        path,
        json!({"review_by": at(&s, 30 * 86_400), "reference": "REV-2026-Q1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Issuance and renewal work again.
    assert_eq!(token(&wl, &s, &["deploy:read"], None).await.0, 201);
    let renew = wl
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": w.csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(renew.status(), 201);
    // 30 days ahead is inside the 14-day warning window only near the end.
    let (_, inv) = get(&op, &s, "/v1/admin/integrations/reviewed").await;
    assert_eq!(inv["status"], "active");
    assert_eq!(change_kinds(&s, "reviewed"), vec![ChangeKind::Recertified]);
    assert_audit_clean(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_recertification_is_limited_to_90_days_and_warned_before() {
    let s = TestAppliance::new("gov-recert-priv").serve().await;
    let op = s.operator();
    let mut reg = registration("vault-admin");
    reg["privilege_class"] = json!("privileged");
    reg["review_by"] = json!(at(&s, 60 * 86_400));
    assert_eq!(register(&s, &reg).await.status(), 201);
    let path = "/v1/admin/integrations/vault-admin/recertify";
    let (status, body) = post(
        &op,
        &s,
        path,
        json!({"review_by": at(&s, 91 * 86_400), "reference": "REV-1"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("90 days"),
        "{body}"
    );
    // Within the warning window (14 days by default) the inventory says so.
    let (status, _) = post(
        &op,
        &s,
        path,
        json!({"review_by": at(&s, 10 * 86_400), "reference": "REV-2"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, inv) = get(&op, &s, "/v1/admin/integrations?privileged=true").await;
    let entry = &inv["integrations"][0];
    assert_eq!(entry["review_state"], "due_soon");
    let flags = entry["flags"].as_array().unwrap();
    assert!(flags.contains(&json!("review_due_soon")), "{entry}");
    let (status, _) = post(
        &op,
        &s,
        path,
        json!({"review_by": at(&s, 90 * 86_400), "reference": "REV-3"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_audit_clean(&s).await;
    s.stop().await;
}

/// Registration sets the first review-by: the same class cap as a recertification (365
/// days routine, 90 privileged, end of that day), refused with 400 naming `review_by`, and
/// nothing written; the auditor replays the accepted ones cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_review_by_is_capped_like_a_recertification() {
    let s = TestAppliance::new("gov-reg-cap").serve().await;
    let size = s.state().ledger.size();
    let cases = [
        (
            "forever",
            "routine",
            "9999-12-31".to_string(),
            "at most 365 days",
        ),
        (
            "year-and-day",
            "routine",
            at(&s, 366 * 86_400),
            "at most 365 days",
        ),
        (
            "vault",
            "privileged",
            at(&s, 91 * 86_400),
            "at most 90 days",
        ),
    ];
    for (name, class, review_by, needle) in cases {
        let mut reg = registration(name);
        reg["privilege_class"] = json!(class);
        reg["review_by"] = json!(review_by);
        let body = assert_error(register(&s, &reg).await, 400, needle).await;
        assert_eq!(body["error"], "invalid_field", "{body}");
        assert_eq!(body["field"], "review_by", "{body}");
    }
    assert_eq!(
        s.state().ledger.size(),
        size,
        "refused registrations write nothing"
    );

    // At the cap is fine: a plain date that many days ahead, for each class.
    let day = |days: i64| {
        (s.clock.now() + time::Duration::days(days))
            .date()
            .to_string()
    };
    for (name, class, review_by) in [
        ("yearly", "routine", day(365)),
        ("quarterly", "privileged", day(90)),
    ] {
        let mut reg = registration(name);
        reg["privilege_class"] = json!(class);
        reg["review_by"] = json!(review_by);
        let resp = register(&s, &reg).await;
        assert_eq!(resp.status(), 201, "{name}: {}", resp.text().await.unwrap());
    }
    assert_audit_clean(&s).await;
    s.stop().await;
}
