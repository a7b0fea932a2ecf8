//! Every refusal the issue lists, each with its status code and message, and nothing
//! written to the ledger for a refused request.

use credmint_ledger::event::{Event, ReuseKind};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::common::{openssl_csr, TestAppliance};
use crate::support::{
    assert_error, enroll, enrollment_token, register, registered_workload, registration,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_errors_name_the_field() {
    let s = TestAppliance::new("reg").serve().await;
    for field in [
        "business_owner",
        "approval_ref",
        "scopes",
        "review_by",
        "max_ttl_secs",
    ] {
        let mut body = registration("svc");
        body.as_object_mut().unwrap().remove(field);
        let b = assert_error(register(&s, &body).await, 400, field).await;
        assert_eq!(b["field"], field);
    }
    let mut body = registration("svc");
    body["privilege_class"] = json!("privileged");
    body["max_ttl_secs"] = json!(3600);
    assert_error(register(&s, &body).await, 400, "max_ttl_secs").await;
    let size = s.state().ledger.size();
    assert_eq!(register(&s, &registration("svc")).await.status(), 201);
    assert_error(
        register(&s, &registration("svc")).await,
        409,
        "already exists",
    )
    .await;
    assert_eq!(
        s.state().ledger.size(),
        size + 1,
        "refused registrations write nothing"
    );

    // Bodies that are not JSON, carry unknown fields, or are too large.
    let op = s.operator();
    let resp = op
        .post(s.url("/v1/admin/integrations"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid JSON").await;
    let mut body = registration("svc2");
    body["root_access"] = json!(true);
    assert_error(register(&s, &body).await, 400, "root_access").await;
    // Refused from the headers, before the body is read (a raw client that sends
    // only what the server reads, so the answer is deterministic).
    crate::common::assert_oversized_bodies_get_413(
        &s,
        "/v1/admin/integrations",
        "application/json",
        false,
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_tokens_are_single_use_and_expire() {
    let s = TestAppliance::new("enroll").serve().await;
    assert_eq!(register(&s, &registration("batch")).await.status(), 201);
    let token = enrollment_token(&s, "batch").await;
    let csr = openssl_csr("ec", "");
    assert_eq!(enroll(&s, &token, &csr, None).await.status(), 201);
    let size = s.state().ledger.size();
    assert_error(enroll(&s, &token, &csr, None).await, 401, "already used").await;
    // The second use is recorded as a reuse signal (and nothing else).
    let ledger = s.state().ledger.clone();
    assert_eq!(ledger.size(), size + 1);
    let last = ledger.record(size).unwrap().unwrap();
    match last.event {
        Event::ReuseDetected(r) => {
            assert_eq!(r.kind, ReuseKind::EnrollmentToken);
            assert_eq!(r.integration, "batch");
            assert!(
                !r.credential.contains(&token),
                "the token itself is never recorded"
            );
        }
        other => panic!("expected reuse-detected, got {other:?}"),
    }
    assert_error(
        enroll(&s, "cmt_not-a-real-token", &csr, None).await,
        401,
        "invalid enrollment token",
    )
    .await;
    let resp = s
        .anonymous()
        .post(s.url("/v1/enroll"))
        .json(&json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "Bearer").await;

    let late = enrollment_token(&s, "batch").await;
    s.clock.advance(601);
    assert_error(enroll(&s, &late, &csr, None).await, 401, "expired").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_csrs_ttls_and_names_are_refused() {
    let s = TestAppliance::new("csr").serve().await;
    assert_eq!(register(&s, &registration("api")).await.status(), 201);
    let token = enrollment_token(&s, "api").await;
    let size = s.state().ledger.size();

    assert_error(
        enroll(&s, &token, &openssl_csr("ec", ""), Some(901)).await,
        403,
        "exceeds the integration's maximum of 900s",
    )
    .await;
    assert_error(
        enroll(&s, &token, &openssl_csr("rsa:1024", ""), None).await,
        400,
        "too small",
    )
    .await;
    assert_error(
        enroll(&s, &token, &openssl_csr("ec", "DNS:evil.example"), None).await,
        403,
        "evil.example",
    )
    .await;
    assert_error(
        enroll(
            &s,
            &token,
            &openssl_csr("ec", "URI:spiffe://test.credmint.local/prod/other"),
            None,
        )
        .await,
        403,
        "outside what this integration may have",
    )
    .await;
    let mut forged = openssl_csr("ec", "");
    forged.csr_pem = flip_signature_byte(&forged.csr_pem);
    assert_error(enroll(&s, &token, &forged, None).await, 400, "signature").await;
    let resp = s.anonymous().post(s.url("/v1/enroll")).bearer_auth(&token).json(&json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"})).send().await.unwrap();
    assert_error(resp, 400, "").await;
    assert_eq!(s.state().ledger.size(), size, "refusals wrote nothing");
    // The token is still unused after all those refusals; RSA-2048 and Ed25519 are fine.
    assert_eq!(
        enroll(&s, &token, &openssl_csr("rsa:2048", ""), None)
            .await
            .status(),
        201
    );
    s.stop().await;
}

/// IP and e-mail SANs are refused by type (403, like a disallowed DNS name), never
/// silently left out of the certificate; on enrollment and on renewal alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_and_email_sans_are_refused_naming_the_type() {
    let s = TestAppliance::new("san-types").serve().await;
    let workload = registered_workload(&s, "api").await;
    let token = enrollment_token(&s, "api").await;
    let size = s.state().ledger.size();
    let allowed = "DNS:api.internal.example";
    for (sans, kind) in [
        (format!("{allowed},IP:10.0.0.1"), "iPAddress"),
        (format!("IP:::1,{allowed}"), "iPAddress"),
        (format!("{allowed},email:ops@example.com"), "rfc822Name"),
    ] {
        let csr = openssl_csr("ec", &sans);
        let body = assert_error(enroll(&s, &token, &csr, None).await, 403, kind).await;
        assert_eq!(body["error"], "denied", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("is not supported"), "{message}");
        let resp = workload
            .client(&s)
            .post(s.url("/v1/renew"))
            .json(&json!({"csr": csr.csr_pem}))
            .send()
            .await
            .unwrap();
        assert_error(resp, 403, kind).await;
    }
    assert_eq!(s.state().ledger.size(), size, "refusals wrote nothing");
    // The same names without the IP or e-mail name are issued.
    let csr = openssl_csr("ec", allowed);
    assert_eq!(enroll(&s, &token, &csr, None).await.status(), 201);
    s.stop().await;
}

fn flip_signature_byte(pem: &str) -> String {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = engine.decode(b64).unwrap();
    let last = der.len() - 3;
    der[last] ^= 0x01;
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        engine.encode(der)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_and_review_overdue_integrations_get_nothing() {
    let s = TestAppliance::new("standing").serve().await;
    let mut body = registration("nightly");
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(120))
        .format(&Rfc3339)
        .unwrap();
    body["review_by"] = json!(soon);
    assert_eq!(register(&s, &body).await.status(), 201);
    let w = {
        let token = enrollment_token(&s, "nightly").await;
        let csr = openssl_csr("ec", "");
        let resp = enroll(&s, &token, &csr, None).await;
        assert_eq!(resp.status(), 201);
        crate::support::Enrolled {
            csr,
            chain_pem: resp.text().await.unwrap(),
        }
    };
    let op = s.operator();
    let resp = op
        .post(s.url("/v1/admin/integrations/nightly/suspend"))
        .json(&json!({"reason": "incident INC-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let token_req = json!({"audience": "a", "scopes": ["deploy:read"]});
    let resp = w
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&token_req)
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "suspended").await;
    let resp = op
        .post(s.url("/v1/admin/integrations/nightly/enrollments"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "suspended").await;
    let resp = op
        .post(s.url("/v1/admin/integrations/nightly/resume"))
        .json(&json!({"reason": "INC-7 closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = w
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&token_req)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    s.clock.advance(200);
    let renew = json!({"csr": openssl_csr("ec", "").csr_pem});
    let resp = w
        .client(&s)
        .post(s.url("/v1/renew"))
        .json(&renew)
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "recertification is required").await;
    let resp = w
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&token_req)
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "recertification is required").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_cannot_cross_integrations_or_reach_admin_routes() {
    let s = TestAppliance::new("cross").serve().await;
    let a = registered_workload(&s, "team-a").await;
    let mut b = registration("team-b");
    b["scopes"] = json!(["billing:admin"]);
    assert_eq!(register(&s, &b).await.status(), 201);

    let client = a.client(&s);
    let resp = client
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "billing", "scopes": ["billing:admin"]}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "billing:admin").await;
    let csr = openssl_csr("ec", "URI:spiffe://test.credmint.local/prod/team-b");
    let resp = client
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "team-b").await;
    let csr = openssl_csr("ec", "DNS:team-b.internal.example");
    let resp = client
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "team-b.internal.example").await;

    // A workload certificate never opens admin routes; no certificate at all is 401.
    let resp = client
        .post(s.url("/v1/admin/integrations/team-b/enrollments"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "operator certificate").await;
    let resp = client
        .get(s.url("/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "operator certificate").await;
    let resp = s
        .anonymous()
        .get(s.url("/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "client certificate required").await;
    // And an operator certificate is not a workload.
    let resp = s
        .operator()
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "x", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "workload certificate").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_names_cannot_be_taken_and_expired_operator_certificates_open_nothing() {
    let s = TestAppliance::new("opnames").serve().await;
    let add = |name: &str| json!({"name": name, "csr": openssl_csr("ec", "").csr_pem, "approval_ref": "CHG-9"});
    let bob_csr = openssl_csr("ec", "");
    let body = json!({"name": "bob", "csr": bob_csr.csr_pem, "approval_ref": "CHG-9"});
    // A new operator is only a request until a second operator approves it.
    let resp = s
        .operator()
        .post(s.url("/v1/admin/operators"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let index = resp.json::<serde_json::Value>().await.unwrap()["request_index"]
        .as_u64()
        .unwrap();
    let resp = s
        .operator2()
        .post(s.url(&format!("/v1/admin/operators/requests/{index}/approve")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let bob = s.with_identity(&resp.text().await.unwrap(), &bob_csr.key_pem);
    let resp = bob
        .post(s.url("/v1/admin/operators"))
        .json(&add("admin"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 409, "only that operator may renew").await;
    // Renewing one's own operator certificate keeps the name.
    let resp = bob
        .post(s.url("/v1/admin/operators"))
        .json(&add("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // The TLS layer admits expired certificates so routes can explain; admin routes refuse.
    s.clock.advance(366 * 86_400);
    let resp = s
        .operator()
        .get(s.url("/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "operator certificate expired").await;
    s.stop().await;
}
