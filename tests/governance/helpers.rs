//! Steps shared by the governance tests.

use credmint_ledger::event::{AnomalyFlagged, AnomalyKind, ChangeKind, IntegrationChanged};
use credmint_ledger::{Event, Record};
use serde_json::{json, Value};

use crate::common::{openssl_csr, Served};

/// Every record of the appliance's ledger, decoded.
pub fn records(s: &Served) -> Vec<Record> {
    s.records()
}

/// Anomaly events about `integration`, with their actors.
pub fn anomalies(s: &Served, integration: &str) -> Vec<(String, AnomalyFlagged)> {
    records(s)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::AnomalyFlagged(a) if a.integration == integration => Some((r.actor, a)),
            _ => None,
        })
        .collect()
}

pub fn anomalies_of(s: &Served, integration: &str, kind: AnomalyKind) -> Vec<AnomalyFlagged> {
    anomalies(s, integration)
        .into_iter()
        .filter(|(_, a)| a.kind == kind)
        .map(|(_, a)| a)
        .collect()
}

/// The anomaly of `kind` about `integration`, once every signal caused so far is
/// committed; panics if there is none.
pub async fn wait_for_anomaly(s: &Served, integration: &str, kind: AnomalyKind) -> AnomalyFlagged {
    settle(s).await;
    match anomalies_of(s, integration, kind).into_iter().next() {
        Some(a) => a,
        None => panic!(
            "no {kind:?} anomaly for {integration}: {:?}",
            anomalies(s, integration)
        ),
    }
}

/// Waits until every signal event caused by what was answered so far is committed (a
/// sequencer barrier, not a sleep), so an absence means something.
pub async fn settle(s: &Served) {
    s.state().sequencer.flush().await.unwrap();
}

/// Integration changes of `integration`, with their actors.
pub fn changes(s: &Served, integration: &str) -> Vec<(u64, String, IntegrationChanged)> {
    records(s)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::IntegrationChanged(c) if c.spec.name == integration => {
                Some((r.index, r.actor, c))
            }
            _ => None,
        })
        .collect()
}

pub fn change_kinds(s: &Served, integration: &str) -> Vec<ChangeKind> {
    changes(s, integration)
        .into_iter()
        .map(|c| c.2.kind)
        .collect()
}

/// Mints operator `name` under dual control: `requester` asks, `approver` approves;
/// returns a client presenting the new certificate.
pub async fn mint_operator(
    s: &Served,
    requester: &reqwest::Client,
    approver: &reqwest::Client,
    name: &str,
) -> reqwest::Client {
    let csr = openssl_csr("ec", "");
    let (status, body) = post(
        requester,
        s,
        "/v1/admin/operators",
        json!({"name": name, "csr": csr.csr_pem, "approval_ref": "CHG-OPS-1"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let index = body["request_index"].as_u64().unwrap();
    let resp = approver
        .post(s.url(&format!("/v1/admin/operators/requests/{index}/approve")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let chain = resp.text().await.unwrap();
    s.with_identity(&chain, &csr.key_pem)
}

/// POSTs JSON with `client`; returns (status, body).
pub async fn post(client: &reqwest::Client, s: &Served, path: &str, body: Value) -> (u16, Value) {
    let resp = client.post(s.url(path)).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn get(client: &reqwest::Client, s: &Served, path: &str) -> (u16, Value) {
    let resp = client.get(s.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Asks for a token with `scopes`; returns the status.
pub async fn token(
    client: &reqwest::Client,
    s: &Served,
    scopes: &[&str],
    ttl: Option<u64>,
) -> (u16, Value) {
    let mut body = json!({"audience": "deploy-api", "scopes": scopes});
    if let Some(t) = ttl {
        body["ttl_secs"] = json!(t);
    }
    post(client, s, "/v1/tokens", body).await
}

/// RFC 3339 time `secs` after the appliance's clock.
pub fn at(s: &Served, secs: i64) -> String {
    (s.clock.now() + time::Duration::seconds(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Exports the ledger over HTTPS and runs the offline auditor with semantic rules: every
/// governance event written must satisfy FORMAT.md §13.
pub async fn assert_audit_clean(s: &Served) {
    settle(s).await;
    s.assert_ledger_verifies(s.state().ledger.ledger_key())
        .await;
}
