//! Token key rotation (through the CLI verb): tokens from before and after verify against
//! the JWKS, which lists both keys during the overlap and drops the old one afterwards.

use jsonwebtoken::jwk::JwkSet;
use serde_json::{json, Value};

use crate::common::{text, Served, TestAppliance};
use crate::support::{registered_workload, Enrolled};
use crate::util::assert_custodial;

async fn token(s: &Served, w: &Enrolled) -> String {
    let resp = w
        .client(s)
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "deploy-api", "scopes": ["deploy:read"], "ttl_secs": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let v: Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn jwks(s: &Served) -> JwkSet {
    s.anonymous()
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `jwt` with jsonwebtoken against `set`; returns its kid.
fn verify(iss: &str, set: &JwkSet, jwt: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let kid = header.kid.unwrap();
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not in JWKS"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["deploy-api"]);
    validation.set_issuer(&[iss]);
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .map_err(|e| e.to_string())?;
    Ok(kid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rotation_keeps_old_tokens_verifiable_during_overlap() {
    let s = TestAppliance::new("rot-token").serve().await;
    let w = registered_workload(&s, "tokened").await;
    let before = token(&s, &w).await;
    // Tokens carry the listener's URL as `iss`; a restart below changes the port.
    let iss0 = s.base.clone();
    let set = jwks(&s).await;
    assert_eq!(set.keys.len(), 1);
    let old_kid = verify(&iss0, &set, &before).unwrap();

    // The operator CLI verb, against the running appliance.
    let out = s.app.cli(&[
        "keys", "rotate", "token", "--reason", "drill", "--url", &s.base,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["role"], "token");
    assert_eq!(body["new_key"]["label"], "token-r1");
    let new_kid = body["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert_custodial(&s, "token-r1");

    // Overlap: both keys published; the old token still verifies, new tokens use the new
    // key at once.
    let set = jwks(&s).await;
    assert_eq!(set.keys.len(), 2);
    assert_eq!(verify(&iss0, &set, &before).unwrap(), old_kid);
    let after = token(&s, &w).await;
    assert_eq!(verify(&s.base, &set, &after).unwrap(), new_kid);
    let rec = {
        let l = &s.state().ledger;
        l.record(l.size() - 1).unwrap().unwrap()
    };
    let credmint_ledger::Event::TokenIssued(t) = rec.event else {
        panic!("last record is not the token")
    };
    assert_eq!(
        t.key_fingerprint,
        s.state()
            .ledger
            .keys_in_force()
            .iter()
            .find(|k| k.role == credmint_ledger::KeyRole::Token)
            .unwrap()
            .fingerprint(),
        "the token event names the new key"
    );

    // Restart: the new key keeps signing, the old one is still published.
    let s = s.restart().await;
    assert_eq!(s.state().keys.current().keys.token.label(), "token-r1");
    let set = jwks(&s).await;
    assert_eq!(set.keys.len(), 2);
    let again = token(&s, &w).await;
    assert_eq!(verify(&s.base, &set, &again).unwrap(), new_kid);
    assert_eq!(verify(&iss0, &set, &before).unwrap(), old_kid);

    // Once the longest token the old key can have signed has expired, it is retired.
    s.clock.advance(3600 + 31);
    let set = jwks(&s).await;
    assert_eq!(set.keys.len(), 1);
    assert!(verify(&iss0, &set, &before).is_err());
    s.stop().await;
}
