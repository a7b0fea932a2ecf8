//! Decommissioning revokes every live credential in the same ledger batch as the
//! decommissioning itself (seen by openssl over OCSP and by the JSON status), and the name
//! can never issue or be registered again.

use credmint_ledger::event::ChangeKind;
use credmint_ledger::Event;
use serde_json::json;

use crate::common::{leaf_serial, openssl, Served, TestAppliance};
use crate::helpers::{assert_audit_clean, get, post, records, token};
use crate::support::{enrolled, register, registered_workload, registration};

fn leaf_pem(chain: &str) -> String {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_string()
}

/// `openssl ocsp` against the live responder; returns its output.
fn ocsp(s: &Served, dir: &std::path::Path, name: &str, chain: &str) -> String {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &s.ca_pem).unwrap();
    let cert = dir.join(name);
    std::fs::write(&cert, leaf_pem(chain)).unwrap();
    let url = format!(
        "https://127.0.0.1:{}/ocsp",
        s.running.as_ref().unwrap().addr.port()
    );
    let (ca, cert) = (ca.to_str().unwrap(), cert.to_str().unwrap());
    let (ok, out) = openssl(&[
        "ocsp", "-issuer", ca, "-CAfile", ca, "-url", &url, "-cert", cert,
    ]);
    assert!(ok && out.contains("Response verify OK"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommission_revokes_all_live_credentials_and_retires_the_name() {
    let s = TestAppliance::new("gov-decom").serve().await;
    let op = s.operator();
    let tmp = tempfile::tempdir().unwrap();
    let first = registered_workload(&s, "retiring").await;
    let second = enrolled(&s, "retiring").await;
    let (status, issued) = token(&first.client(&s), &s, &["deploy:read"], None).await;
    assert_eq!(status, 201);
    let jti = issued["jti"].as_str().unwrap().to_string();
    // A bystander integration keeps its credentials.
    let other = registered_workload(&s, "bystander").await;
    for (name, w) in [
        ("first.pem", &first),
        ("second.pem", &second),
        ("other.pem", &other),
    ] {
        let out = ocsp(&s, tmp.path(), name, &w.chain_pem);
        assert!(out.contains(": good"), "{out}");
    }

    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/retiring/decommission",
        json!({"reason": "service retired (CHG-900)"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "decommissioned");
    assert_eq!(body["revoked_certificates"], 2);
    assert_eq!(body["revoked_tokens"], 1);

    // OCSP (openssl) and JSON status agree: revoked, cessationOfOperation.
    for (name, w) in [("first.pem", &first), ("second.pem", &second)] {
        let out = ocsp(&s, tmp.path(), name, &w.chain_pem);
        assert!(out.contains(": revoked"), "{out}");
        assert!(out.contains("cessationOfOperation"), "{out}");
        let (status, st) = get(
            &s.anonymous(),
            &s,
            &format!("/v1/status/{}", leaf_serial(&w.chain_pem)),
        )
        .await;
        assert_eq!(
            (status, st["status"].as_str()),
            (200, Some("revoked")),
            "{st}"
        );
        assert_eq!(st["reason"], "cessationOfOperation");
    }
    let (_, st) = get(&s.anonymous(), &s, &format!("/v1/status/token/{jti}")).await;
    assert_eq!(st["status"], "revoked", "{st}");
    let out = ocsp(&s, tmp.path(), "other.pem", &other.chain_pem);
    assert!(out.contains(": good"), "{out}");

    // One transaction: the decommissioning first (nothing can be issued after it), then
    // the revocations, sharing its timestamp.
    let all = records(&s);
    let at = all
        .iter()
        .rposition(|r| matches!(&r.event, Event::IntegrationChanged(c) if c.kind == ChangeKind::Decommissioned))
        .unwrap();
    for r in &all[at + 1..at + 4] {
        assert!(
            matches!(r.event, Event::Revoked(_) | Event::TokenRevoked(_)),
            "{:?}",
            r.event
        );
        assert_eq!(r.timestamp_ms, all[at].timestamp_ms);
    }

    // The name is unusable: no issuance, no enrollment, no re-registration, no changes.
    let renew = first
        .client(&s)
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": first.csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(renew.status(), 401);
    let (status, body) = post(
        &op,
        &s,
        "/v1/admin/integrations/retiring/enrollments",
        json!({}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("decommissioned"),
        "{body}"
    );
    assert_eq!(register(&s, &registration("retiring")).await.status(), 409);
    for (path, body) in [
        ("resume", json!({"reason": "oops"})),
        ("suspend", json!({"reason": "oops"})),
        ("decommission", json!({"reason": "again"})),
        ("changes", json!({"scopes": ["deploy:read"], "reason": "x"})),
        (
            "recertify",
            json!({"review_by": "2030-01-01", "reference": "x"}),
        ),
    ] {
        let (status, answer) = post(
            &op,
            &s,
            &format!("/v1/admin/integrations/retiring/{path}"),
            body,
        )
        .await;
        assert_eq!(status, 409, "{path}: {answer}");
    }
    let (_, inv) = get(&op, &s, "/v1/admin/integrations").await;
    let entry = inv["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "retiring")
        .unwrap()
        .clone();
    assert_eq!(entry["live_certificates"], 0);
    assert_eq!(entry["live_tokens"], 0);
    assert!(entry["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("decommissioned")));
    assert_audit_clean(&s).await;
    s.stop().await;
}
