//! Steps shared by the issuance tests.

use serde_json::{json, Value};

use crate::common::{date_in_days, openssl_csr, OpensslCsr, Served};

pub fn registration(name: &str) -> Value {
    json!({
        "name": name,
        "business_owner": "payments",
        "technical_owner": "alice@example.com",
        "purpose": "deploys the payments service",
        "environment": "prod",
        "scopes": ["deploy:read", "deploy:write"],
        "privilege_class": "routine",
        "max_ttl_secs": 900,
        "review_by": date_in_days(300),
        "approval_ref": "CHG-1234",
        "dns_names": [format!("{name}.internal.example")],
    })
}

pub async fn register(s: &Served, body: &Value) -> reqwest::Response {
    s.operator()
        .post(s.url("/v1/admin/integrations"))
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn enrollment_token(s: &Served, name: &str) -> String {
    let resp = s
        .operator()
        .post(s.url(&format!("/v1/admin/integrations/{name}/enrollments")))
        .json(&json!({"ttl_secs": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

pub async fn enroll(
    s: &Served,
    token: &str,
    csr: &OpensslCsr,
    ttl: Option<u64>,
) -> reqwest::Response {
    let mut body = json!({ "csr": csr.csr_pem });
    if let Some(t) = ttl {
        body["ttl_secs"] = json!(t);
    }
    s.anonymous()
        .post(s.url("/v1/enroll"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A workload of integration `name`: its key and certificate chain.
pub struct Enrolled {
    pub csr: OpensslCsr,
    pub chain_pem: String,
}

impl Enrolled {
    pub fn client(&self, s: &Served) -> reqwest::Client {
        s.with_identity(&self.chain_pem, &self.csr.key_pem)
    }

    /// `POST /v1/revoke` of its own certificate over its mTLS; asserts 200.
    #[allow(dead_code)]
    pub async fn revoke_self(&self, s: &Served, reason: &str) {
        let resp = self
            .client(s)
            .post(s.url("/v1/revoke"))
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    /// `POST /v1/tokens` over this workload's mTLS for audience `a` with `deploy:read`.
    /// (Not every test binary that includes this file mints.)
    #[allow(dead_code)]
    pub async fn mint_token(&self, s: &Served) -> reqwest::Response {
        self.client(s)
            .post(s.url("/v1/tokens"))
            .json(&json!({"audience": "a", "scopes": ["deploy:read"]}))
            .send()
            .await
            .unwrap()
    }
}

/// Registers `name` and enrolls one workload with a fresh P-256 key.
pub async fn registered_workload(s: &Served, name: &str) -> Enrolled {
    let resp = register(s, &registration(name)).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    enrolled(s, name).await
}

/// A new workload of the registered integration `name` (a fresh key, one enrollment).
pub async fn enrolled(s: &Served, name: &str) -> Enrolled {
    let token = enrollment_token(s, name).await;
    let csr = openssl_csr("ec", "");
    let resp = enroll(s, &token, &csr, None).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    Enrolled {
        csr,
        chain_pem: resp.text().await.unwrap(),
    }
}

/// Asserts an error response's status and that its JSON message contains `needle`.
pub async fn assert_error(resp: reqwest::Response, status: u16, needle: &str) -> Value {
    let got = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "expected {needle:?} in {body}");
    body
}
