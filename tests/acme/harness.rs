//! An appliance with ACME integrations, EAB keys, and a minimal ACME client (ES256 JWS)
//! for what certbot and lego cannot be made to send.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::common::Served;
use crate::support::{register, registration};

/// `app` with `settings` (TOML lines) as its `[acme]` section: `http01_port` (RFC 8555
/// says 80, which a test client cannot bind), `dns_resolvers` (the test's Knot server).
pub fn with_acme(
    app: crate::common::TestAppliance,
    settings: &str,
) -> crate::common::TestAppliance {
    let mut text = std::fs::read_to_string(&app.config_path).unwrap();
    text.push_str(&format!("\n[acme]\n{settings}\n"));
    std::fs::write(&app.config_path, text).unwrap();
    app
}

/// Registers `name` with `dns_names`, pre-authorized for ACME or not.
pub async fn acme_integration(s: &Served, name: &str, dns: &[&str], preauthorized: bool) {
    let mut body = registration(name);
    body["dns_names"] = json!(dns);
    body["allow_server_auth"] = json!(true);
    body["acme_preauthorized"] = json!(preauthorized);
    let resp = register(s, &body).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

/// An EAB key (kid, base64url HMAC key) for `name`, through the CLI-facing admin API.
pub async fn eab(s: &Served, name: &str) -> (String, String) {
    let resp = s
        .operator()
        .post(s.url(&format!("/v1/admin/integrations/{name}/acme-eab")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let v: Value = resp.json().await.unwrap();
    assert!(v["directory"]
        .as_str()
        .unwrap()
        .ends_with("/acme/directory"));
    (
        v["kid"].as_str().unwrap().to_string(),
        v["hmac_key"].as_str().unwrap().to_string(),
    )
}

/// The CA bundle as a file, for certbot's REQUESTS_CA_BUNDLE and lego's
/// LEGO_CA_CERTIFICATES.
pub fn ca_file(s: &Served) -> String {
    s.app.data().join("ca.pem").display().to_string()
}

/// One ACME account key and the requests it signs.
pub struct Client {
    pub http: reqwest::Client,
    pub directory: Value,
    key: Key,
    /// Account URL once created.
    pub kid: Option<String>,
    pub nonce: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The ACME problem type without its namespace.
    pub fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("urn:ietf:params:acme:error:")
    }
}

pub use credmint::acme::client::AccountSigner as Key;

pub fn new_key() -> Key {
    Key::generate()
}

pub fn jwk(key: &Key) -> Value {
    key.jwk()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A flattened JWS by `key` over `payload` (None: POST-as-GET).
pub fn sign(key: &Key, header: &Value, payload: Option<&Value>) -> Value {
    key.sign(header, payload)
}

impl Client {
    pub async fn new(s: &Served) -> Client {
        let http = s.anonymous();
        let directory: Value = http
            .get(s.url("/acme/directory"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Client {
            http,
            directory,
            key: new_key(),
            kid: None,
            nonce: None,
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap().to_string()
    }

    pub fn jwk(&self) -> Value {
        jwk(&self.key)
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn set_key(&mut self, key: Key) {
        self.key = key;
    }

    pub async fn fresh_nonce(&self) -> String {
        let r = self.http.head(self.url("newNonce")).send().await.unwrap();
        r.headers()["replay-nonce"].to_str().unwrap().to_string()
    }

    /// Posts `jws` as application/jose+json; remembers the answer's nonce.
    pub async fn post_raw(&mut self, url: &str, jws: &Value) -> Answer {
        let r = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(jws.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        self.nonce = h
            .get("replay-nonce")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(self.nonce.is_some(), "every ACME answer carries a nonce");
        let location = h.get("location").map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            location,
            body,
            text,
        }
    }

    /// A request signed by the account (`kid`) or, before it exists, by its `jwk`.
    pub async fn post(&mut self, url: &str, payload: Option<&Value>) -> Answer {
        let nonce = match self.nonce.take() {
            Some(n) => n,
            None => self.fresh_nonce().await,
        };
        let jws = self.key.request(url, &nonce, self.kid.as_deref(), payload);
        self.post_raw(url, &jws).await
    }

    /// newAccount with an EAB for (kid, hmac); on success remembers the account URL.
    pub async fn register(&mut self, kid: &str, hmac: &str) -> Answer {
        let url = self.url("newAccount");
        let binding = credmint::acme::client::eab_binding(kid, hmac, &url, &self.jwk()).unwrap();
        let a = self
            .post(
                &url,
                Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})),
            )
            .await;
        if a.status == 201 {
            self.kid = a.location.clone();
        }
        a
    }

    pub async fn new_order(&mut self, names: &[&str], extra: Value) -> Answer {
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        let mut payload = json!({"identifiers": ids});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                payload[k] = v;
            }
        }
        let url = self.url("newOrder");
        self.post(&url, Some(&payload)).await
    }

    /// The first authorization of `order` and the URL of its `kind` challenge.
    pub async fn challenge_url(&mut self, order: &Answer, kind: &str) -> (String, String) {
        let authz_url = order.body["authorizations"][0]
            .as_str()
            .unwrap()
            .to_string();
        let authz = self.post(&authz_url, None).await;
        let url = challenge_of(&authz, kind)["url"]
            .as_str()
            .unwrap()
            .to_string();
        (authz_url, url)
    }

    /// Starts the `kind` challenge of `order`'s first authorization and polls the
    /// authorization until it is no longer pending; its last answer.
    pub async fn validate(&mut self, order: &Answer, kind: &str) -> Answer {
        let (authz_url, chall) = self.challenge_url(order, kind).await;
        let r = self.post(&chall, Some(&json!({}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for _ in 0..300 {
            let a = self.post(&authz_url, None).await;
            if a.body["status"] != "pending" {
                return a;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{authz_url} still pending after 30 s");
    }

    /// Finalizes a ready order with a fresh P-256 CSR for `names` and downloads the chain.
    pub async fn finalize(&mut self, order: &Answer, names: &[&str]) -> (Answer, Option<String>) {
        let csr = csr_der(names);
        let url = order.body["finalize"].as_str().unwrap().to_string();
        let a = self.post(&url, Some(&json!({"csr": b64(&csr)}))).await;
        if a.status != 200 {
            return (a, None);
        }
        let cert_url = a.body["certificate"].as_str().unwrap().to_string();
        let chain = self.post(&cert_url, None).await;
        assert_eq!(chain.status, 200, "{}", chain.text);
        let text = chain.text.clone();
        (a, Some(text))
    }
}

/// The `kind` challenge of an authorization.
pub fn challenge_of<'a>(authz: &'a Answer, kind: &str) -> &'a Value {
    authz.body["challenges"]
        .as_array()
        .unwrap_or_else(|| panic!("no challenges in {}", authz.text))
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} challenge in {}", authz.text))
}

/// A DER CSR for `names` with a new P-256 key (rcgen).
pub fn csr_der(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// What `credmint-audit query --integration NAME` lists, from the exported bundle
/// verified offline (the same library the binary runs).
pub async fn audit_query(
    s: &Served,
    integration: &str,
) -> Vec<credmint_ledger::audit::query::Credential> {
    use credmint_ledger::audit::query::{QueryCollector, QueryFilter};
    let bundle = s.export_bundle().await;
    let opts = credmint_ledger::audit::AuditOptions {
        ledger_key: crate::common::genesis_key_of(&s.state().ledger),
        since: None,
        key_name: None,
        semantic: true,
        review_caps: Default::default(),
    };
    let mut collector = QueryCollector::new(QueryFilter {
        integration: Some(integration.to_string()),
        approval_ref: None,
        key_prefix: None,
        operator: None,
        since: None,
    });
    let report = credmint_ledger::audit::verify_bundle(
        bundle.as_slice(),
        &opts,
        &mut |_, _| {},
        &mut |r, k| collector.push(r, k),
    );
    assert_eq!(report.violations_total, 0, "{:?}", report.violations);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    collector.finish(now_ms)
}
