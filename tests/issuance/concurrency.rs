//! Concurrent requests against one appliance: races are decided by the sequencer, once,
//! against committed state. A one-time token is spent exactly once; a revocation wins
//! against every token request that has not committed before it.

use credmint_ledger::event::Event;
use serde_json::{json, Value};

use crate::common::{openssl_csr, TestAppliance};
use crate::support::{enroll, enrollment_token, register, registered_workload, registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_uses_of_one_enrollment_token_issue_exactly_one_certificate() {
    let s = TestAppliance::new("conc-enroll").serve().await;
    assert_eq!(register(&s, &registration("racer")).await.status(), 201);
    let token = enrollment_token(&s, "racer").await;
    let csrs: Vec<_> = (0..20).map(|_| openssl_csr("ec", "")).collect();
    let answers =
        futures_util::future::join_all(csrs.iter().map(|csr| enroll(&s, &token, csr, None))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|&&c| c == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&c| c == 401).count(),
        19,
        "{statuses:?}"
    );
    let all = s.records();
    let used = all
        .iter()
        .filter(|r| matches!(r.event, Event::EnrollmentUsed(_)))
        .count();
    let issued = all
        .iter()
        .filter(|r| matches!(&r.event, Event::CertificateIssued(c) if c.integration == "racer"))
        .count();
    assert_eq!((used, issued), (1, 1));
    assert!(all
        .iter()
        .any(|r| matches!(r.event, Event::ReuseDetected(_))));
    s.assert_ledger_verifies(s.state().ledger.ledger_key())
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renewals_and_tokens_all_commit_with_distinct_serials_and_ids() {
    let s = TestAppliance::new("conc-renew").serve().await;
    let w = registered_workload(&s, "busy").await;
    let client = w.client(&s);
    let renewals = (0..16).map(|_| {
        let client = client.clone();
        let url = s.url("/v1/renew");
        let csr = w.csr.csr_pem.clone();
        async move {
            let r = client
                .post(url)
                .json(&json!({"csr": csr}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers()["x-credmint-serial"]
                    .to_str()
                    .unwrap()
                    .to_string(),
            )
        }
    });
    let tokens = (0..16).map(|_| {
        let client = client.clone();
        let url = s.url("/v1/tokens");
        async move {
            let r = client
                .post(url)
                .json(&json!({"audience": "deploy-api", "scopes": ["deploy:read"]}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (status, v["jti"].as_str().unwrap_or_default().to_string())
        }
    });
    let (renewed, issued) = futures_util::future::join(
        futures_util::future::join_all(renewals),
        futures_util::future::join_all(tokens),
    )
    .await;
    let mut serials: Vec<_> = renewed.iter().map(|(c, s)| (*c, s.clone())).collect();
    assert!(serials.iter().all(|(c, _)| *c == 201), "{serials:?}");
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 16);
    let mut jtis: Vec<_> = issued.iter().map(|(c, j)| (*c, j.clone())).collect();
    assert!(jtis.iter().all(|(c, _)| *c == 201), "{jtis:?}");
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 16);
    s.assert_ledger_verifies(s.state().ledger.ledger_key())
        .await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_racing_token_requests_lets_nothing_commit_after_it() {
    let s = TestAppliance::new("conc-revoke").serve().await;
    let w = registered_workload(&s, "doomed").await;
    let client = w.client(&s);
    let serial = {
        let (_, pem) = x509_parser::pem::parse_x509_pem(w.chain_pem.as_bytes()).unwrap();
        hex::encode(pem.parse_x509().unwrap().raw_serial())
    };
    let tokens = (0..24).map(|_| {
        let client = client.clone();
        let url = s.url("/v1/tokens");
        async move {
            client
                .post(url)
                .json(&json!({"audience": "deploy-api", "scopes": ["deploy:read"]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let revoke = async {
        s.revoke_certificate(&serial, "keyCompromise")
            .await
            .status()
            .as_u16()
    };
    let (statuses, revoked) =
        futures_util::future::join(futures_util::future::join_all(tokens), revoke).await;
    assert_eq!(revoked, 200);
    assert!(
        statuses.iter().all(|c| *c == 201 || *c == 401),
        "{statuses:?}"
    );
    let all = s.records();
    let revoked_at = all
        .iter()
        .find(|r| matches!(&r.event, Event::Revoked(v) if hex::encode(&v.serial) == serial))
        .unwrap()
        .index;
    let tokens: Vec<u64> = all
        .iter()
        .filter(|r| matches!(&r.event, Event::TokenIssued(t) if t.integration == "doomed"))
        .map(|r| r.index)
        .collect();
    assert!(
        tokens.iter().all(|&i| i < revoked_at),
        "token after revocation: {tokens:?} vs {revoked_at}"
    );
    assert_eq!(tokens.len(), statuses.iter().filter(|c| **c == 201).count());
    s.stop().await;
}
