//! `credmint bench acme`: ACME certificates per second end to end over HTTPS against a
//! running appliance. Each one is newOrder, finalize (policy, HSM signature, durable ledger
//! append) and the chain download: three JWS requests, against `bench issue`'s one renewal.
//! The integration is pre-authorized, so no challenge is timed (validation is the client's
//! web server, not credmint).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::load::{drive, throwaway_integration, LoadFigure};
use crate::acme::client::{eab_binding, AccountSigner};
use crate::acme::eab::{EabKey, EabRequest};
use crate::client::{build, ClientError, OperatorClient};

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(e.to_string())
}

/// One account's connection, key, URL and the nonce the last answer carried.
struct Session {
    http: reqwest::Client,
    key: AccountSigner,
    kid: Option<String>,
    nonce: String,
}

impl Session {
    async fn post(
        &mut self,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<(u16, Option<String>, String), ClientError> {
        let jws = self
            .key
            .request(url, &self.nonce, self.kid.as_deref(), payload);
        let r = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(jws.to_string())
            .send()
            .await
            .map_err(other)?;
        let status = r.status().as_u16();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(n) = header("replay-nonce") {
            self.nonce = n;
        }
        let location = header("location");
        Ok((status, location, r.text().await.map_err(other)?))
    }
}

fn refused(status: u16, body: String) -> ClientError {
    ClientError::Refused {
        status,
        message: body,
    }
}

/// One order to the end: the certificate chain is downloaded.
async fn one(s: &mut Session, dir: &Value, name: &str, csr_b64: &str) -> Result<(), ClientError> {
    let order_payload = json!({"identifiers": [{"type": "dns", "value": name}]});
    let (st, _, body) = s
        .post(
            dir["newOrder"].as_str().unwrap_or_default(),
            Some(&order_payload),
        )
        .await?;
    if st != 201 {
        return Err(refused(st, body));
    }
    let order: Value = serde_json::from_str(&body).map_err(other)?;
    let finalize = order["finalize"].as_str().unwrap_or_default().to_string();
    let (st, _, body) = s.post(&finalize, Some(&json!({"csr": csr_b64}))).await?;
    if st != 200 {
        return Err(refused(st, body));
    }
    let done: Value = serde_json::from_str(&body).map_err(other)?;
    let cert = done["certificate"].as_str().unwrap_or_default().to_string();
    let (st, _, body) = s.post(&cert, None).await?;
    if st != 200 || !body.starts_with("-----BEGIN CERTIFICATE-----") {
        return Err(refused(st, body));
    }
    Ok(())
}

/// Registers a pre-authorized integration, opens `concurrency` accounts (one EAB key each)
/// and runs orders on all of them for `duration`.
pub async fn acme(
    operator: &OperatorClient,
    ca_pem: &[u8],
    concurrency: usize,
    duration: Duration,
) -> Result<LoadFigure, ClientError> {
    let (name, mut registration) = throwaway_integration("bench-acme", "ACME throughput benchmark");
    let dns = format!("{name}.bench.internal");
    registration.dns_names = vec![dns.clone()];
    registration.acme_preauthorized = true;
    operator
        .post("/v1/admin/integrations", &registration)
        .await?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(other)?;
    let csr = rcgen::CertificateParams::new(vec![dns.clone()])
        .map_err(other)?
        .serialize_request(&key)
        .map_err(other)?;
    let csr_b64 = Arc::new(URL_SAFE_NO_PAD.encode(csr.der()));
    let directory: Value = build(ca_pem, None)?
        .get(format!("{}/acme/directory", operator.base))
        .send()
        .await
        .map_err(other)?
        .json()
        .await
        .map_err(other)?;
    let directory = Arc::new(directory);
    let mut sessions = Vec::new();
    for _ in 0..concurrency {
        let eab: EabKey = operator
            .post_as(
                &format!("/v1/admin/integrations/{name}/acme-eab"),
                &EabRequest::default(),
            )
            .await?;
        let http = build(ca_pem, None)?;
        let nonce_url = directory["newNonce"].as_str().unwrap_or_default();
        let nonce = http
            .head(nonce_url)
            .send()
            .await
            .map_err(other)?
            .headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut s = Session {
            http,
            key: AccountSigner::generate(),
            kid: None,
            nonce,
        };
        let url = directory["newAccount"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let binding = eab_binding(&eab.kid, &eab.hmac_key, &url, &s.key.jwk()).map_err(other)?;
        let (st, location, body) = s
            .post(
                &url,
                Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})),
            )
            .await?;
        if st != 201 {
            return Err(refused(st, body));
        }
        s.kid = location;
        sessions.push(s);
    }
    let what = "certificates issued over ACME (newOrder + finalize + download, durable ledger)";
    Ok(drive(what, sessions, duration, move |mut s| {
        let (dir, dns, csr) = (directory.clone(), dns.clone(), csr_b64.clone());
        async move {
            let ok = one(&mut s, &dir, &dns, &csr).await.is_ok();
            (s, ok)
        }
    })
    .await)
}
