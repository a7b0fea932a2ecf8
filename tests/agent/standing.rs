//! The appliance side of the agent's protocol: `GET /v1/self`, and which dead
//! certificates `POST /v1/renew` still lets through (`superseded`, expiry grace).

use serde_json::{json, Value};

use crate::common::{leaf_serial, openssl_csr, TestAppliance};
use crate::support::{assert_error, registered_workload, Enrolled};

async fn whoami(s: &crate::common::Served, w: &Enrolled) -> Value {
    let resp = w.client(s).get(s.url("/v1/self")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn renew(s: &crate::common::Served, w: &Enrolled) -> reqwest::Response {
    let csr = openssl_csr("ec", "");
    w.client(s)
        .post(s.url("/v1/renew"))
        .json(&json!({ "csr": csr.csr_pem, "ttl_secs": 60 }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_route_tells_a_workload_its_standing_and_superseded_certificates_may_still_renew() {
    let s = TestAppliance::new("agent-self").serve().await;
    let w = registered_workload(&s, "agent-self").await;
    let serial = leaf_serial(&w.chain_pem);

    let me = whoami(&s, &w).await;
    assert_eq!(me["integration"]["name"], "agent-self");
    assert_eq!(me["integration"]["status"], "active");
    assert_eq!(me["certificate"]["serial"], serial.as_str());
    assert_eq!(me["certificate"]["status"], "good");
    assert_eq!(me["certificate"]["renewable"], true);

    // Superseded: the operator wants a new certificate, nothing is suspected of the key.
    let resp = s.revoke_certificate(&serial, "superseded").await;
    assert_eq!(resp.status(), 200);
    let me = whoami(&s, &w).await;
    assert_eq!(me["certificate"]["status"], "revoked");
    assert_eq!(me["certificate"]["reason"], "superseded");
    assert_eq!(me["certificate"]["renewable"], true, "{me}");
    assert_error(
        w.mint_token(&s).await,
        401,
        "certificate revoked (superseded)",
    )
    .await;
    let resp = renew(&s, &w).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // The key turns out stolen: revoking the superseded certificate again with
    // keyCompromise is recorded (FORMAT.md §13.2) and ends its renewals.
    let resp = s.revoke_certificate(&serial, "keyCompromise").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["already_revoked"], false, "{body}");
    assert_eq!(body["reason"], "keyCompromise");
    assert_error(
        renew(&s, &w).await,
        401,
        "certificate revoked (keyCompromise)",
    )
    .await;
    let resp = s.revoke_certificate(&serial, "superseded").await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["already_revoked"], true, "{body}");
    assert_eq!(
        body["reason"], "keyCompromise",
        "the recorded reason, not the one asked"
    );
    let (_, status) = s.certificate_status(&serial).await;
    assert_eq!(status["reason"], "keyCompromise", "{status}");

    // Revoke-all reaches a certificate revoked as superseded too.
    let rotating = crate::support::enrolled(&s, "agent-self").await;
    let rotating_serial = leaf_serial(&rotating.chain_pem);
    assert_eq!(
        s.revoke_certificate(&rotating_serial, "superseded")
            .await
            .status(),
        200
    );
    let resp = s
        .operator()
        .post(s.url("/v1/admin/integrations/agent-self/revoke-all"))
        .json(&json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_error(
        renew(&s, &rotating).await,
        401,
        "certificate revoked (keyCompromise)",
    )
    .await;

    // Any other reason ends the key's career: no renewal, the reason in the refusal.
    let other = crate::support::enrolled(&s, "agent-self").await;
    let resp = s
        .revoke_certificate(&leaf_serial(&other.chain_pem), "keyCompromise")
        .await;
    assert_eq!(resp.status(), 200);
    let me = whoami(&s, &other).await;
    assert_eq!(me["certificate"]["renewable"], false);
    assert!(
        me["certificate"]["refusal"]
            .as_str()
            .unwrap()
            .contains("keyCompromise"),
        "{me}"
    );
    assert_error(
        renew(&s, &other).await,
        401,
        "certificate revoked (keyCompromise)",
    )
    .await;

    // Suspension shows in the integration, and renewal is refused by policy.
    let third = crate::support::enrolled(&s, "agent-self").await;
    let resp = s
        .operator()
        .post(s.url("/v1/admin/integrations/agent-self/suspend"))
        .json(&json!({"reason": "INC-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let me = whoami(&s, &third).await;
    assert_eq!(me["integration"]["status"], "suspended");
    assert_eq!(me["certificate"]["status"], "good");
    assert_eq!(me["certificate"]["renewable"], false);
    assert!(
        me["certificate"]["refusal"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{me}"
    );
    assert_error(renew(&s, &third).await, 403, "suspended").await;

    // Only workload certificates: an operator's is refused, no certificate is 401.
    let resp = s.operator().get(s.url("/v1/self")).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let resp = s.anonymous().get(s.url("/v1/self")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Asking recorded nothing: no reuse signal for the revoked certificates' polls, and
    // the ledger (with the superseded renewal) passes the auditor.
    let reuse = s
        .records()
        .iter()
        .filter(|r| matches!(r.event, credmint_ledger::Event::ReuseDetected(_)))
        .count();
    assert_eq!(
        reuse, 3,
        "one per revoked certificate used (w twice within the rate limit, rotating, other), none for the polls"
    );
    let key = crate::common::genesis_key_of(&s.state().ledger);
    s.await_covered().await;
    s.assert_ledger_verifies(key).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_renews_only_within_the_configured_grace() {
    let app = TestAppliance::new("agent-grace");
    app.edit_config(
        "privileged_max_secs = 900\n",
        "privileged_max_secs = 900\nrenew_after_expiry_secs = 120\n",
    );
    let s = app.serve().await;
    let w = registered_workload(&s, "agent-grace").await;
    // (Enrolled before the clock moves: the TLS layer judges notBefore by the real clock.)
    let fresh = crate::support::enrolled(&s, "agent-grace").await;
    // Past not_after (900 s) but within the grace: renewed.
    s.clock.advance(900 + 60);
    let me = whoami(&s, &w).await;
    assert_eq!(me["certificate"]["status"], "expired");
    assert_eq!(me["certificate"]["renewable"], true, "{me}");
    let resp = renew(&s, &w).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    // Within the grace, an expired certificate still mints no token.
    assert_error(fresh.mint_token(&s).await, 401, "certificate expired").await;
    // Past the grace: refused, as without one.
    s.clock.advance(120);
    let me = whoami(&s, &w).await;
    assert_eq!(me["certificate"]["renewable"], false);
    assert_error(renew(&s, &w).await, 401, "certificate expired").await;
    s.stop().await;
}
