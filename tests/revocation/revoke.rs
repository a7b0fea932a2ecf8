//! Revoking, and the JSON status answers that prove it against the ledger.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use credmint_ledger::event::{Event, ReuseKind};
use credmint_ledger::{merkle, Record};
use serde_json::{json, Value};

use crate::common::{leaf_serial, openssl_csr, Served, TestAppliance};
use crate::support::{assert_error, registered_workload, Enrolled};

/// Checks a status answer's ledger evidence with the ledger crate alone: the checkpoint is
/// signed by the genesis ledger key, the record hashes into its root through the proof,
/// and the record is the event the answer claims.
fn verify_evidence(s: &Served, body: &Value) -> Record {
    let ev = &body["ledger"];
    let origin = s.state().ledger.origin().to_string();
    let key = s.state().ledger.ledger_key();
    let cp = credmint_ledger::checkpoint::open(ev["checkpoint"].as_str().unwrap(), &origin, &key)
        .expect("checkpoint signed by the ledger key");
    assert_eq!(cp.size, ev["tree_size"].as_u64().unwrap());
    let bytes = STANDARD.decode(ev["record"].as_str().unwrap()).unwrap();
    let proof: Vec<[u8; 32]> = ev["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let index = ev["index"].as_u64().unwrap();
    merkle::verify_inclusion(index, cp.size, &merkle::leaf_hash(&bytes), &proof, &cp.root)
        .expect("inclusion proof verifies against the signed checkpoint");
    let mut wrong = bytes.clone();
    wrong[10] ^= 1;
    assert!(
        merkle::verify_inclusion(index, cp.size, &merkle::leaf_hash(&wrong), &proof, &cp.root)
            .is_err()
    );
    Record::decode(&bytes).unwrap()
}

async fn status(s: &Served, serial: &str) -> (u16, Value) {
    s.certificate_status(serial).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_status_proves_good_then_revoked_against_the_ledger() {
    let s = TestAppliance::new("status").serve().await;
    let w = registered_workload(&s, "payments").await;
    let serial = leaf_serial(&w.chain_pem);

    let (code, body) = status(&s, &serial).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "good");
    match verify_evidence(&s, &body).event {
        Event::CertificateIssued(c) => assert_eq!(hex::encode(c.serial), serial),
        other => panic!("good answer backed by {other:?}"),
    }

    let resp = s.revoke_certificate(&serial, "keyCompromise").await;
    assert_eq!(resp.status(), 200);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["already_revoked"], false);
    let again: Value = s
        .revoke_certificate(&serial, "keyCompromise")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["already_revoked"], true,
        "revoking twice is idempotent and says so"
    );
    assert_eq!(again["ledger_index"], first["ledger_index"]);

    let (code, body) = status(&s, &serial).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "revoked");
    assert_eq!(body["reason"], "keyCompromise");
    let record = verify_evidence(&s, &body);
    assert_eq!(record.actor, "operator:admin");
    match record.event {
        Event::Revoked(r) => {
            assert_eq!(hex::encode(r.serial), serial);
            assert_eq!(r.reason, 1);
        }
        other => panic!("revoked answer backed by {other:?}"),
    }

    // Never issued: unknown (404), never good. Garbage: 400.
    let (code, body) = status(&s, "0badc0ffee").await;
    assert_eq!((code, body["status"].as_str()), (404, Some("unknown")));
    let (code, _) = status(&s, "not-hex").await;
    assert_eq!(code, 400);
    assert_error(
        s.revoke_certificate("0badc0ffee", "keyCompromise").await,
        404,
        "no certificate",
    )
    .await;
    assert_error(
        s.revoke_certificate(&serial, "certificateHold").await,
        400,
        "reason",
    )
    .await;

    // The revoked certificate is refused on renewal and token requests, and counted.
    let before = s.state().ledger.size();
    let client = w.client(&s);
    for _ in 0..3 {
        let resp = client
            .post(s.url("/v1/renew"))
            .json(&json!({"csr": w.csr.csr_pem}))
            .send()
            .await
            .unwrap();
        assert_error(resp, 401, "revoked").await;
    }
    let resp = client
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "a", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "revoked").await;
    assert_eq!(s.state().signals.reuse_total(), 4);
    // Rate-limited: four presentations, one ledger event.
    let ledger = s.state().ledger.clone();
    let reuse: Vec<_> = (before..ledger.size())
        .filter_map(|i| match ledger.record(i).unwrap().unwrap().event {
            Event::ReuseDetected(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reuse.len(), 1, "{reuse:?}");
    assert_eq!(reuse[0].kind, ReuseKind::RevokedCertificate);
    assert_eq!(reuse[0].credential, serial);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_and_self_revoke_stay_in_their_lane() {
    let s = TestAppliance::new("bulk").serve().await;
    let a1 = registered_workload(&s, "svc-a").await;
    let a2 = enroll_another(&s, "svc-a").await;
    let b = registered_workload(&s, "svc-b").await;
    let token: Value = a1
        .client(&s)
        .post(s.url("/v1/tokens"))
        .json(&json!({"audience": "x", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Self-revoke: a workload cannot touch another workload's serial...
    let resp = a1
        .client(&s)
        .post(s.url("/v1/revoke"))
        .json(&json!({"serial": leaf_serial(&b.chain_pem)}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "only the certificate it presents").await;
    assert_eq!(
        status(&s, &leaf_serial(&b.chain_pem)).await.1["status"],
        "good"
    );
    // ...but can end its own.
    let resp = a2
        .client(&s)
        .post(s.url("/v1/revoke"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        status(&s, &leaf_serial(&a2.chain_pem)).await.1["reason"],
        "cessationOfOperation"
    );

    let resp = s
        .operator()
        .post(s.url("/v1/admin/integrations/svc-a/revoke-all"))
        .json(&json!({"reason": "privilegeWithdrawn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["revoked_certificates"], 1,
        "a2 was already revoked: {body}"
    );
    assert_eq!(body["revoked_tokens"], 1);
    assert_eq!(
        status(&s, &leaf_serial(&a1.chain_pem)).await.1["status"],
        "revoked"
    );
    assert_eq!(
        status(&s, &leaf_serial(&b.chain_pem)).await.1["status"],
        "good",
        "other integrations untouched"
    );
    let (_, body) = s.token_status(token["jti"].as_str().unwrap()).await;
    assert_eq!(body["status"], "revoked");
    verify_evidence(&s, &body);
    s.stop().await;
}

async fn enroll_another(s: &Served, name: &str) -> Enrolled {
    let token = crate::support::enrollment_token(s, name).await;
    let csr = openssl_csr("ec", "");
    let resp = crate::support::enroll(s, &token, &csr, None).await;
    assert_eq!(resp.status(), 201);
    Enrolled {
        csr,
        chain_pem: resp.text().await.unwrap(),
    }
}
