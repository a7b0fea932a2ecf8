//! Ledger key rotation: checkpoints after it are signed by the new key, and the exported
//! bundle verifies offline with only the genesis key pinned.

use credmint_ledger::audit::Outcome;
use credmint_ledger::event::{Event, KeyRole};
use serde_json::json;

use crate::common::{assert_verifies, audit, TestAppliance};
use crate::support::{assert_error, registered_workload};
use crate::util::{assert_custodial, rotate};

/// Waits until the served checkpoint covers the whole ledger; returns its note.
async fn covered_checkpoint(s: &crate::common::Served) -> String {
    s.await_covered().await;
    let resp = s
        .anonymous()
        .get(s.url("/v1/ledger/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_rotation_is_followed_from_the_genesis_key_and_survives_restart() {
    let s = TestAppliance::new("rot-ledger").serve().await;
    let origin = s.state().ledger.origin().to_string();
    let genesis_key = s.state().ledger.ledger_key();
    let w = registered_workload(&s, "ledgered").await;

    let body = rotate(&s, "ledger").await;
    assert_eq!(body["role"], "ledger");
    assert_eq!(body["old_key"]["label"], "ledger");
    assert_eq!(body["new_key"]["label"], "ledger-r1");
    let new_key = s.state().ledger.ledger_key();
    assert_ne!(new_key, genesis_key, "the store follows the rotation");
    assert_eq!(
        s.state().keys.current().keys.ledger.label(),
        "ledger-r1",
        "the appliance signs with the new key at once"
    );
    assert_custodial(&s, "ledger-r1");

    // The rotation record carries the new key, signed by old and new key.
    let index = body["ledger_index"].as_u64().unwrap();
    let rec = s.state().ledger.record(index).unwrap().unwrap();
    assert_eq!(rec.actor, "operator:admin");
    let Event::KeyRotated(r) = rec.event else {
        panic!("record {index} is not a rotation")
    };
    assert_eq!(r.role, KeyRole::Ledger);
    assert_eq!(r.new_key.ed25519_raw(), Some(new_key));
    assert!(credmint_ledger::keys::verify_with(
        &r.old_key,
        &r.signed_message(&origin),
        &r.old_signature
    ));
    assert!(credmint_ledger::keys::verify_with(
        &r.new_key,
        &r.signed_message(&origin),
        &r.new_signature
    ));

    // A checkpoint covering the rotation was signed right away, by the new key only.
    assert!(body["checkpoint_size"].as_u64().unwrap() > index);
    let note = covered_checkpoint(&s).await;
    credmint_ledger::checkpoint::open(&note, &origin, &new_key).expect("new key signs");
    assert!(credmint_ledger::checkpoint::open(&note, &origin, &genesis_key).is_err());

    // More activity after the rotation, then checkpoints keep coming with the new key.
    let tok = w.mint_token(&s).await;
    assert_eq!(tok.status(), 201);
    let note = covered_checkpoint(&s).await;
    credmint_ledger::checkpoint::open(&note, &origin, &new_key).expect("new key signs");

    // Restart: the appliance picks the rotated key from the ledger history.
    let s = s.restart().await;
    assert_eq!(s.state().keys.current().keys.ledger.label(), "ledger-r1");
    let tok = w
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "b", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(tok.status(), 201);
    let note = covered_checkpoint(&s).await;
    credmint_ledger::checkpoint::open(&note, &origin, &new_key).expect("new key after restart");

    // A second rotation chains on: r1 -> r2.
    let body = rotate(&s, "ledger").await;
    assert_eq!(body["old_key"]["label"], "ledger-r1");
    assert_eq!(body["new_key"]["label"], "ledger-r2");
    let newest = s.state().ledger.ledger_key();

    // The auditor pins only the genesis key and follows both rotations.
    let bundle = s.export_bundle().await;
    let report = assert_verifies(&bundle, genesis_key);
    assert_eq!(report.records, s.state().ledger.size());
    assert_eq!(report.key_history.len(), 2, "{:?}", report.key_history);
    assert_eq!(report.ledger_key_in_force, hex::encode(newest));

    // Pinning the post-rotation key instead of genesis' is refused.
    assert_ne!(audit(&bundle, new_key).outcome, Outcome::Verified);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_needs_an_operator_and_a_known_role() {
    let s = TestAppliance::new("rot-refuse").serve().await;
    let resp = s
        .anonymous()
        .post(s.url("/v1/admin/keys/ledger/rotate"))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let w = registered_workload(&s, "sneaky").await;
    let resp = w
        .client(&s)
        .post(s.url("/v1/admin/keys/ca/rotate"))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = s
        .operator()
        .post(s.url("/v1/admin/keys/tls/rotate"))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = s
        .operator()
        .post(s.url("/v1/admin/keys/token/rotate"))
        .json(&json!({"reason": " "}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "is required").await;
    assert_eq!(s.state().ledger.keys_in_force(), {
        let g = s.state().ledger.record(0).unwrap().unwrap();
        match g.event {
            Event::Genesis(g) => g.keys,
            _ => unreachable!(),
        }
    });
    s.stop().await;
}
