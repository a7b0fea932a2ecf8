//! Each refusal with its ACME problem type, a fresh nonce, and nothing written: no EAB,
//! a wrong or spent EAB, the EAB of a decommissioned integration, a name outside the
//! integration, a lifetime above its maximum, a replayed nonce, a JWS by another
//! account's key, a suspended integration, the wrong content type or URL, and an http-01
//! challenge nobody answers.

use serde_json::json;

use crate::common::{free_port, Served, TestAppliance};
use crate::harness::{acme_integration, challenge_of, eab, sign, with_acme, Client};

async fn admin(s: &Served, path: &str, body: serde_json::Value) {
    let r = s
        .operator()
        .post(s.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{path}: {}",
        r.text().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_acme_problem_and_write_nothing() {
    // Nobody listens on this port: http-01 must fail.
    let s = with_acme(
        TestAppliance::new("acme-refuse"),
        &format!("http01_port = {}", free_port()),
    )
    .serve()
    .await;
    acme_integration(&s, "rf-pre", &["ok.rf.test"], true).await;
    acme_integration(&s, "rf-web", &["localhost"], false).await;
    acme_integration(&s, "rf-gone", &["gone.rf.test"], true).await;
    let (kid, hmac) = eab(&s, "rf-pre").await;
    let (gone_kid, gone_hmac) = eab(&s, "rf-gone").await;
    admin(
        &s,
        "/v1/admin/integrations/rf-gone/decommission",
        json!({"reason": "retired"}),
    )
    .await;
    let size = || s.state().ledger.size();

    // No External Account Binding.
    let mut c = Client::new(&s).await;
    let before = size();
    let url = c.url("newAccount");
    let r = c
        .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (401, "externalAccountRequired"),
        "{}",
        r.text
    );
    // A wrong HMAC key for a real kid.
    let r = c
        .register(&kid, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{}",
        r.text
    );
    // The EAB of a decommissioned integration.
    let r = c.register(&gone_kid, &gone_hmac).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert_eq!(size(), before, "refused accounts write nothing");

    // A good account; its EAB key binds no second one.
    let r = c.register(&kid, &hmac).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut other = Client::new(&s).await;
    let r = other.register(&kid, &hmac).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert!(
        r.body["detail"].as_str().unwrap().contains("already bound"),
        "{}",
        r.text
    );

    // A name outside the integration: rejectedIdentifier, with the name as subproblem.
    let r = c
        .new_order(&["ok.rf.test", "evil.example"], json!({}))
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (400, "rejectedIdentifier"),
        "{}",
        r.text
    );
    assert_eq!(
        r.body["subproblems"][0]["identifier"]["value"], "evil.example",
        "{}",
        r.text
    );
    // An IP identifier.
    let url = c.url("newOrder");
    let r = c
        .post(
            &url,
            Some(&json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (400, "rejectedIdentifier"),
        "{}",
        r.text
    );
    // A lifetime above the integration's maximum (900 s).
    let far = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let far = far
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = c.new_order(&["ok.rf.test"], json!({"notAfter": far})).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert!(
        r.text.contains("exceeds the integration's maximum"),
        "{}",
        r.text
    );
    // An unknown profile.
    let r = c
        .new_order(&["ok.rf.test"], json!({"profile": "everything"}))
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (400, "invalidProfile"),
        "{}",
        r.text
    );

    // An algorithm the key does not have: badSignatureAlgorithm, listing what is accepted.
    let nonce = c.fresh_nonce().await;
    let header = json!({"alg": "RS256", "kid": c.kid.clone().unwrap(), "nonce": nonce, "url": url});
    let r = c
        .post_raw(&url, &sign(c.key(), &header, Some(&json!({}))))
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (400, "badSignatureAlgorithm"),
        "{}",
        r.text
    );
    assert!(
        r.body["algorithms"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ES256"))),
        "{}",
        r.text
    );

    // A replayed nonce: badNonce, and the answer carries a fresh one.
    let nonce = c.fresh_nonce().await;
    let header = json!({"alg": "ES256", "kid": c.kid.clone().unwrap(), "nonce": nonce, "url": url});
    let jws = sign(
        c.key(),
        &header,
        Some(&json!({"identifiers": [{"type": "dns", "value": "ok.rf.test"}]})),
    );
    let first = c.post_raw(&url, &jws).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let r = c.post_raw(&url, &jws).await;
    assert_eq!((r.status, r.problem()), (400, "badNonce"), "{}", r.text);
    assert!(c.nonce.as_deref().is_some_and(|n| n != nonce));

    // A JWS naming this account but signed by another account's key.
    let mut b = Client::new(&s).await;
    let (kid_b, hmac_b) = eab(&s, "rf-pre").await;
    assert_eq!(b.register(&kid_b, &hmac_b).await.status, 201);
    let before = size();
    let nonce = c.fresh_nonce().await;
    let forged = json!({"alg": "ES256", "kid": c.kid.clone().unwrap(), "nonce": nonce, "url": url});
    let jws = sign(
        b.key(),
        &forged,
        Some(&json!({"identifiers": [{"type": "dns", "value": "ok.rf.test"}]})),
    );
    let r = c.post_raw(&url, &jws).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);

    // The wrong URL in the protected header, and the wrong content type.
    let nonce = c.fresh_nonce().await;
    let wrong = json!({"alg": "ES256", "kid": c.kid.clone().unwrap(), "nonce": nonce, "url": c.url("newAccount")});
    let r = c
        .post_raw(&url, &sign(c.key(), &wrong, Some(&json!({}))))
        .await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    let resp = c
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert!(resp.headers().contains_key("replay-nonce"));
    assert_eq!(size(), before, "refused orders write nothing");

    // A suspended integration: unauthorized.
    admin(
        &s,
        "/v1/admin/integrations/rf-pre/suspend",
        json!({"reason": "incident"}),
    )
    .await;
    let r = c.new_order(&["ok.rf.test"], json!({})).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert!(r.text.contains("suspended"), "{}", r.text);

    // http-01 nobody answers: the authorization and the order become invalid, and
    // finalizing is orderNotReady.
    let mut w = Client::new(&s).await;
    let (kid_w, hmac_w) = eab(&s, "rf-web").await;
    assert_eq!(w.register(&kid_w, &hmac_w).await.status, 201);
    let order = w.new_order(&["localhost"], json!({})).await;
    assert_eq!(
        (order.status, order.body["status"].as_str()),
        (201, Some("pending")),
        "{}",
        order.text
    );
    let a = w.validate(&order, "http-01").await;
    assert_eq!(a.body["status"], "invalid", "{}", a.text);
    assert_eq!(
        challenge_of(&a, "http-01")["error"]["type"],
        "urn:ietf:params:acme:error:connection",
        "{}",
        a.text
    );
    let (r, _) = w.finalize(&order, &["localhost"]).await;
    assert_eq!(
        (r.status, r.problem()),
        (403, "orderNotReady"),
        "{}",
        r.text
    );
    s.stop().await;
}
