//! The JSON status answer cache (`status::answers`): a repeated question is answered from
//! the cache with the same bytes, and nothing stale ever comes out of it: a revocation
//! (certificate or token) shows at once, a new checkpoint moves the proof to the newest
//! tree head, and a "good" answer turns "expired" when the clock passes the credential's
//! end.

use serde_json::{json, Value};

use crate::common::{leaf_serial, metric_value, Served, TestAppliance};
use crate::support::registered_workload;

async fn hits(s: &Served) -> f64 {
    metric_value(
        &s.scrape_metrics().await,
        "credmint_status_json_cache_lookups_total{result=\"hit\"}",
    )
}

/// Raw body of a status answer, as the relying party receives it.
async fn raw(s: &Served, path: &str) -> (u16, String) {
    let resp = s.anonymous().get(s.url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Asks until the answer carries a proof (not `proof_pending`), so it may be cached.
async fn proven(s: &Served, path: &str) -> String {
    for _ in 0..100 {
        let (status, body) = raw(s, path).await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["ledger"]["tree_size"].is_u64() {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path}: no checkpoint covered the record");
}

fn field(body: &str, pointer: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap();
    v.pointer(pointer).cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_are_the_same_bytes_and_never_outlive_their_state() {
    let s = TestAppliance::new("json-cache").serve().await;
    let wl = registered_workload(&s, "cached").await;
    let serial = leaf_serial(&wl.chain_pem);
    let cert = format!("/v1/status/{serial}");

    // Miss, then hit: byte-identical, and counted.
    let first = proven(&s, &cert).await;
    assert_eq!(field(&first, "/status"), json!("good"));
    let before = hits(&s).await;
    let (_, second) = raw(&s, &cert).await;
    assert_eq!(second, first);
    assert!(hits(&s).await > before, "the repeat was not a cache hit");

    // A new checkpoint (another issuance) moves the proof to the newest tree head.
    let token: Value = wl.mint_token(&s).await.json().await.unwrap();
    let jti = token["jti"].as_str().unwrap().to_string();
    let token_path = format!("/v1/status/token/{jti}");
    let token_first = proven(&s, &token_path).await;
    let newer = proven(&s, &cert).await;
    assert!(
        field(&newer, "/ledger/tree_size").as_u64() > field(&first, "/ledger/tree_size").as_u64(),
        "a cached answer outlived its checkpoint: {newer}"
    );
    assert_eq!(raw(&s, &token_path).await.1, token_first);

    // Revocations show at once, with no wait for anything to expire.
    wl.revoke_self(&s, "keyCompromise").await;
    let (status, body) = raw(&s, &cert).await;
    assert_eq!(status, 200);
    assert_eq!(field(&body, "/status"), json!("revoked"), "{body}");
    let resp = s
        .operator()
        .post(s.url(&format!("/v1/admin/tokens/{jti}/revoke")))
        .json(&json!({"reason": "superseded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, body) = raw(&s, &token_path).await;
    assert_eq!(field(&body, "/status"), json!("revoked"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_good_answer_turns_expired_with_the_clock() {
    let s = TestAppliance::new("json-cache-exp").serve().await;
    let wl = registered_workload(&s, "expiring").await;
    let cert = format!("/v1/status/{}", leaf_serial(&wl.chain_pem));
    let good = proven(&s, &cert).await;
    assert_eq!(raw(&s, &cert).await.1, good, "cached");
    // Past the certificate's notAfter (max TTL 900 s) with no ledger write in between.
    s.clock.advance(1_000);
    let (_, body) = raw(&s, &cert).await;
    assert_eq!(field(&body, "/status"), json!("expired"), "{body}");
    s.stop().await;
}
