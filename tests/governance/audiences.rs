//! JWT audience policy (FORMAT.md §3.4.1, extension 1): an integration may list the audiences
//! its tokens name; a token for any other is refused before anything is written, narrowing
//! the list applies at once, widening it waits for a second operator, and the offline
//! auditor checks every token against the list in force.

use serde_json::{json, Value};

use crate::common::{Served, TestAppliance};
use crate::helpers::{assert_audit_clean, get, post, records};
use crate::support::{enrolled, registration};

async fn change(s: &Served, body: Value) -> (u16, Value) {
    post(
        &s.operator(),
        s,
        "/v1/admin/integrations/reporter/changes",
        body,
    )
    .await
}

async fn mint(w: &reqwest::Client, s: &Served, audience: &str) -> (u16, Value) {
    post(
        w,
        s,
        "/v1/tokens",
        json!({"audience": audience, "scopes": ["deploy:read"]}),
    )
    .await
}

/// The `aud` claim of a compact JWS, read without trusting it (the signature is checked by
/// the JWT-library interop tests).
fn aud_claim(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["aud"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_name_only_listed_audiences_and_widening_needs_a_second_operator() {
    let s = TestAppliance::new("gov-aud").serve().await;
    let alice = s.operator();
    let mut reg = registration("reporter");
    // Unsorted with a duplicate: stored in its one canonical form.
    reg["audiences"] = json!(["reports", "billing-api", "reports"]);
    let (status, view) = post(&alice, &s, "/v1/admin/integrations", reg).await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["audiences"], json!(["billing-api", "reports"]));
    let w = enrolled(&s, "reporter").await.client(&s);

    let (status, body) = mint(&w, &s, "reports").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        aud_claim(body["token"].as_str().unwrap()),
        json!(["reports"])
    );

    // Not listed: 403 naming the audience, and not one record more.
    let before = records(&s).len();
    let (status, body) = mint(&w, &s, "payroll-api").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("audience \"payroll-api\" is not allowed"),
        "{body}"
    );
    assert_eq!(records(&s).len(), before, "a refused token wrote nothing");

    // Widening (add one, or lift the list) is a pending request; issuance is unchanged.
    for body in [
        json!({"audiences": ["billing-api", "payroll-api", "reports"], "reason": "payroll feed"}),
        json!({"any_audience": true, "reason": "anything goes"}),
    ] {
        let (status, req) = change(&s, body).await;
        assert_eq!(status, 202, "{req}");
        assert_eq!(req["changes"], json!(["audiences"]));
    }
    assert_eq!(mint(&w, &s, "payroll-api").await.0, 403);

    // A different operator approves the list widening: payroll-api is now allowed.
    let (_, pending) = get(&alice, &s, "/v1/admin/changes").await;
    let first = pending["changes"][0]["request_index"].as_u64().unwrap();
    let (status, body) = post(
        &s.operator2(),
        &s,
        &format!("/v1/admin/changes/{first}/approve"),
        json!({"approval_ref": "CAB-9"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mint(&w, &s, "payroll-api").await.0, 201);

    // Narrowing applies at once.
    let (status, body) = change(
        &s,
        json!({"audiences": ["reports"], "reason": "billing moved"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["audiences"], json!(["reports"]));
    assert_eq!(mint(&w, &s, "billing-api").await.0, 403);
    assert_eq!(mint(&w, &s, "reports").await.0, 201);

    // A bad list is a 400 naming the field.
    let (status, body) = change(&s, json!({"audiences": [""], "reason": "typo"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "audiences");

    assert_audit_clean(&s).await;
    s.stop().await;
}
