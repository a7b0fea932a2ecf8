//! Each anomaly signal fires on a scripted scenario and stays silent on normal traffic;
//! each is a ledger event by `system:signals` plus a metric.

use std::net::IpAddr;

use credmint_ledger::event::{AnomalyKind, ChangeKind};
use serde_json::json;

use crate::common::{metric_value, openssl_csr, Served, TestAppliance};
use crate::helpers::{
    anomalies, anomalies_of, assert_audit_clean, change_kinds, changes, get, post, settle, token,
    wait_for_anomaly,
};
use crate::support::{
    enroll, enrollment_token, register, registered_workload, registration, Enrolled,
};

async fn metric(s: &Served, name: &str) -> u64 {
    metric_value(&s.scrape_metrics().await, name) as u64
}

/// Enrolls a fresh certificate for an already registered integration.
async fn enroll_again(s: &Served, name: &str) -> Enrolled {
    let tok = enrollment_token(s, name).await;
    let csr = openssl_csr("ec", "");
    let resp = enroll(s, &tok, &csr, None).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    Enrolled {
        csr,
        chain_pem: resp.text().await.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_integration_becoming_active_is_flagged_and_regular_use_is_not() {
    let s = TestAppliance::new("sig-dormant").serve().await;
    let w = registered_workload(&s, "sleepy").await;
    assert_eq!(
        token(&w.client(&s), &s, &["deploy:read"], None).await.0,
        201
    );
    s.clock.advance(20 * 86_400);
    enroll_again(&s, "sleepy").await; // 20 days idle: below the 30-day default
    settle(&s).await;
    assert!(
        anomalies(&s, "sleepy").is_empty(),
        "{:?}",
        anomalies(&s, "sleepy")
    );
    let (_, inv) = get(&s.operator(), &s, "/v1/admin/integrations?dormant=true").await;
    assert_eq!(inv["integrations"], json!([]));

    s.clock.advance(31 * 86_400);
    let (_, inv) = get(&s.operator(), &s, "/v1/admin/integrations?dormant=true").await;
    assert_eq!(inv["integrations"][0]["name"], "sleepy");
    enroll_again(&s, "sleepy").await;
    let signal = wait_for_anomaly(&s, "sleepy", AnomalyKind::DormantToActive).await;
    assert!(signal.detail.contains("31 days"), "{}", signal.detail);
    assert!(!signal.auto_suspended);
    // Active again: the next issuance is normal traffic. (Certificates issued on the
    // moved clock are not yet valid for real-time TLS, so enroll rather than use mTLS.)
    enroll_again(&s, "sleepy").await;
    settle(&s).await;
    assert_eq!(anomalies(&s, "sleepy").len(), 1);
    assert_eq!(anomalies(&s, "sleepy")[0].0, "system:signals");
    assert_eq!(
        metric(&s, "credmint_signals_total{kind=\"dormant_to_active\"}").await,
        1
    );
    assert_audit_clean(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_spike_is_flagged_and_auto_suspends_a_privileged_integration_but_steady_traffic_is_not(
) {
    let app = TestAppliance::new("sig-volume");
    app.edit_config(
        "privileged_max_secs = 900\n",
        "privileged_max_secs = 900\n\n[signals]\nvolume_window_secs = 60\nbaseline_window_secs = 600\nvolume_factor = 4\nvolume_min_count = 12\nauto_suspend_privileged_on_volume = true\n",
    );
    let s = app.serve().await;
    let mut clients = Vec::new();
    for name in ["steady", "bursty"] {
        let mut reg = registration(name);
        reg["privilege_class"] = json!("privileged");
        reg["review_by"] = json!(crate::common::date_in_days(60));
        assert_eq!(register(&s, &reg).await.status(), 201);
        clients.push(enroll_again(&s, name).await.client(&s));
    }
    // Eleven minutes of normal traffic: "steady" at 15 a minute (above the minimum count,
    // but its own baseline), "bursty" at 2 a minute.
    for _minute in 0..11 {
        for _ in 0..15 {
            assert_eq!(token(&clients[0], &s, &["deploy:read"], None).await.0, 201);
        }
        for _ in 0..2 {
            assert_eq!(token(&clients[1], &s, &["deploy:read"], None).await.0, 201);
        }
        s.clock.advance(60);
    }
    settle(&s).await;
    assert!(
        anomalies(&s, "steady").is_empty(),
        "{:?}",
        anomalies(&s, "steady")
    );
    assert!(
        anomalies(&s, "bursty").is_empty(),
        "{:?}",
        anomalies(&s, "bursty")
    );

    // "bursty" suddenly asks for 30 in a minute.
    let mut refused = None;
    for _ in 0..30 {
        let (status, body) = token(&clients[1], &s, &["deploy:read"], None).await;
        if status != 201 {
            refused = Some((status, body));
            break;
        }
    }
    let signal = wait_for_anomaly(&s, "bursty", AnomalyKind::VolumeSpike).await;
    assert!(signal.auto_suspended, "{signal:?}");
    assert!(signal.detail.contains("in 60s"), "{}", signal.detail);
    let (_, spec) = get(&s.operator(), &s, "/v1/admin/integrations/bursty").await;
    assert_eq!(spec["status"], "suspended");
    let (status, body) = token(&clients[1], &s, &["deploy:read"], None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("suspended"),
        "{body}"
    );
    if let Some((status, body)) = refused {
        assert!(status == 403 || status == 409, "{status} {body}");
    }
    let suspension = changes(&s, "bursty").pop().unwrap();
    assert_eq!(
        (suspension.1.as_str(), suspension.2.kind),
        ("system:signals", ChangeKind::Suspended)
    );
    // Still nothing for the steady integration, which keeps working.
    assert!(anomalies(&s, "steady").is_empty());
    assert_eq!(token(&clients[0], &s, &["deploy:read"], None).await.0, 201);
    assert_eq!(
        metric(&s, "credmint_signals_total{kind=\"volume_spike\"}").await,
        1
    );
    assert_eq!(metric(&s, "credmint_auto_suspensions_total").await, 1);
    assert_audit_clean(&s).await;
    s.stop().await;
}

/// A workload client whose connections leave from `local` (another loopback network).
fn client_from(s: &Served, w: &Enrolled, local: &str) -> reqwest::Client {
    let port = s.running.as_ref().unwrap().addr;
    let pem = format!("{}{}", w.chain_pem, w.csr.key_pem);
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&s.ca_pem).unwrap()])
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .local_address(local.parse::<IpAddr>().unwrap())
        .resolve("localhost", port)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_source_network_is_flagged_once_and_the_usual_network_is_not() {
    let s = TestAppliance::new("sig-network").serve().await;
    let w = registered_workload(&s, "roamer").await; // enrolled from 127.0.0.1: the baseline
    let usual = client_from(&s, &w, "127.0.0.1");
    let nearby = client_from(&s, &w, "127.0.0.9"); // same /24
    assert_eq!(token(&usual, &s, &["deploy:read"], None).await.0, 201);
    assert_eq!(token(&nearby, &s, &["deploy:read"], None).await.0, 201);
    settle(&s).await;
    assert!(
        anomalies(&s, "roamer").is_empty(),
        "{:?}",
        anomalies(&s, "roamer")
    );

    let elsewhere = client_from(&s, &w, "127.0.1.1");
    assert_eq!(token(&elsewhere, &s, &["deploy:read"], None).await.0, 201);
    let signal = wait_for_anomaly(&s, "roamer", AnomalyKind::NewSourceNetwork).await;
    assert!(signal.detail.contains("127.0.1.0/24"), "{}", signal.detail);
    assert_eq!(token(&elsewhere, &s, &["deploy:read"], None).await.0, 201);
    assert_eq!(token(&usual, &s, &["deploy:read"], None).await.0, 201);
    settle(&s).await;
    assert_eq!(
        anomalies(&s, "roamer").len(),
        1,
        "{:?}",
        anomalies(&s, "roamer")
    );
    assert_eq!(
        metric(&s, "credmint_signals_total{kind=\"new_source_network\"}").await,
        1
    );
    assert_audit_clean(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privilege_expansion_fires_on_an_approved_increase_only() {
    let s = TestAppliance::new("sig-privilege").serve().await;
    registered_workload(&s, "grower").await;
    let alice = s.operator();
    let bob = s.operator2();
    let path = "/v1/admin/integrations/grower/changes";
    // A narrowing, and an approved change of purpose only: no expansion.
    let (status, _) = post(
        &alice,
        &s,
        path,
        json!({"max_ttl_secs": 600, "reason": "tighten"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, req) = post(
        &alice,
        &s,
        path,
        json!({"purpose": "deploys payments and ledger", "reason": "scope of service grew"}),
    )
    .await;
    assert_eq!(status, 202, "{req}");
    let index = req["request_index"].as_u64().unwrap();
    let (status, body) = post(
        &bob,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({"approval_ref": "CAB-1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    settle(&s).await;
    assert!(anomalies_of(&s, "grower", AnomalyKind::PrivilegeExpansion).is_empty());

    // An approved routine -> privileged move (requested by bob, approved by admin).
    let (status, req) = post(
        &bob,
        &s,
        path,
        json!({"privilege_class": "privileged", "reason": "needs prod writes"}),
    )
    .await;
    assert_eq!(status, 202, "{req}");
    let index = req["request_index"].as_u64().unwrap();
    let (status, body) = post(
        &alice,
        &s,
        &format!("/v1/admin/changes/{index}/approve"),
        json!({"approval_ref": "CAB-2"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["privilege_class"], "privileged");
    let signal = wait_for_anomaly(&s, "grower", AnomalyKind::PrivilegeExpansion).await;
    assert!(
        signal.detail.contains("Routine -> Privileged"),
        "{}",
        signal.detail
    );
    assert!(signal.detail.contains("operator:admin2") && signal.detail.contains("operator:admin"));
    assert_eq!(
        metric(&s, "credmint_signals_total{kind=\"privilege_expansion\"}").await,
        1
    );
    assert_eq!(
        change_kinds(&s, "grower"),
        vec![
            ChangeKind::Narrowed,
            ChangeKind::IncreaseApproved,
            ChangeKind::IncreaseApproved
        ]
    );
    assert_audit_clean(&s).await;
    s.stop().await;
}
