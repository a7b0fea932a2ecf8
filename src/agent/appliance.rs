//! The agent's calls to the appliance: enrollment with the one-time token, renewal and
//! self-revocation over mTLS with the held certificate, `GET /v1/self`, the CA bundle and
//! the CRL. Every call trusts only the configured CA.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::credential::{AgentKey, Held};
use super::AgentError;
use crate::client::{ClientError, OperatorClient};
use crate::wire::{CertRequest, IssuedToken, SelfRevoke, TokenRequest, TokenStatus, WorkloadSelf};

pub struct Appliance {
    base: String,
    ca_pem: Vec<u8>,
    ttl_secs: Option<u64>,
    anonymous: OperatorClient,
}

impl Appliance {
    pub fn new(
        base: &str,
        ca_pem: Vec<u8>,
        ttl_secs: Option<u64>,
    ) -> Result<Appliance, AgentError> {
        let anonymous = OperatorClient::from_pem(base, &ca_pem, None)?;
        Ok(Appliance {
            base: base.to_string(),
            ca_pem,
            ttl_secs,
            anonymous,
        })
    }

    fn as_holder(&self, held: &Held) -> Result<OperatorClient, AgentError> {
        match &held.key {
            AgentKey::File(pem) => {
                let mut identity = Zeroizing::new(held.chain_pem.clone().into_bytes());
                identity.extend_from_slice(pem.as_bytes());
                Ok(OperatorClient::from_pem(
                    &self.base,
                    &self.ca_pem,
                    Some(&identity),
                )?)
            }
            AgentKey::Token(key) => Ok(OperatorClient::with_token_key(
                &self.base,
                &self.ca_pem,
                held.chain_der.clone(),
                key.clone(),
            )?),
        }
    }

    fn request(&self, csr: String) -> CertRequest {
        CertRequest {
            csr,
            ttl_secs: self.ttl_secs,
        }
    }

    /// `POST /v1/enroll` for `key` (with its `csr`); the token is spent by the appliance.
    pub async fn enroll(
        &self,
        token: &SecretString,
        (key, csr): (AgentKey, String),
        now_ms: u64,
    ) -> Result<Held, AgentError> {
        let body = self.request(csr);
        let chain = self
            .anonymous
            .call_as(
                reqwest::Method::POST,
                "/v1/enroll",
                Some(&body),
                Some(token.expose_secret()),
            )
            .await?;
        Held::new(pem_answer(chain, "/v1/enroll")?, key, now_ms)
    }

    /// `POST /v1/renew` over `held`'s mTLS, for `key` (with its `csr`).
    pub async fn renew(
        &self,
        held: &Held,
        (key, csr): (AgentKey, String),
        now_ms: u64,
    ) -> Result<Held, AgentError> {
        let body = self.request(csr);
        let chain = self.as_holder(held)?.post("/v1/renew", &body).await?;
        Held::new(pem_answer(chain, "/v1/renew")?, key, now_ms)
    }

    /// `GET /v1/self` with `held`: its standing and its integration's.
    pub async fn standing(&self, held: &Held) -> Result<WorkloadSelf, AgentError> {
        Ok(self.as_holder(held)?.get_as("/v1/self").await?)
    }

    /// `POST /v1/revoke` of `held` itself.
    pub async fn revoke(&self, held: &Held, reason: &str) -> Result<(), AgentError> {
        let body = SelfRevoke {
            serial: None,
            reason: Some(reason.to_string()),
        };
        self.as_holder(held)?.post("/v1/revoke", &body).await?;
        Ok(())
    }

    /// `POST /v1/tokens` over `held`'s mTLS (the Workload API's JWT-SVIDs).
    pub async fn token(
        &self,
        held: &Held,
        request: &TokenRequest,
    ) -> Result<IssuedToken, AgentError> {
        Ok(self.as_holder(held)?.post_as("/v1/tokens", request).await?)
    }

    /// `GET /v1/status/token/{jti}`.
    pub async fn token_status(&self, jti: &str) -> Result<TokenStatus, AgentError> {
        if jti.is_empty()
            || !jti
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AgentError::Answer(format!(
                "token id {jti:?} is not a credmint jti"
            )));
        }
        Ok(self
            .anonymous
            .get_as(&format!("/v1/status/token/{jti}"))
            .await?)
    }

    /// `GET /.well-known/jwks.json`: the token keys, as the Workload API's JWT bundle.
    pub async fn jwks(&self) -> Result<Vec<u8>, AgentError> {
        Ok(self.anonymous.get_bytes("/.well-known/jwks.json").await?)
    }

    /// `GET /v1/ca.pem`: what relying parties trust.
    pub async fn bundle(&self) -> Result<Vec<u8>, AgentError> {
        Ok(self.anonymous.get_bytes("/v1/ca.pem").await?)
    }

    /// The CRL (DER) of the CA that issued `held`, from the distribution point its
    /// certificate names.
    pub async fn crl(&self, held: &Held) -> Result<Vec<u8>, AgentError> {
        let path = crl_path(held).unwrap_or_else(|| "/crl".to_string());
        Ok(self.anonymous.get_bytes(&path).await?)
    }
}

/// The path of the leaf's CRL distribution point, when it is under this appliance.
fn crl_path(held: &Held) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(held.chain_der.first()?).ok()?;
    for ext in cert.extensions() {
        if let x509_parser::extensions::ParsedExtension::CRLDistributionPoints(points) =
            ext.parsed_extension()
        {
            for point in points.iter() {
                if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
                    &point.distribution_point
                {
                    for name in names {
                        if let x509_parser::extensions::GeneralName::URI(uri) = name {
                            let after_scheme = uri.split_once("://")?.1;
                            let path = after_scheme.find('/').map(|i| &after_scheme[i..])?;
                            return Some(path.to_string());
                        }
                    }
                }
            }
        }
    }
    None
}

fn pem_answer(v: serde_json::Value, route: &str) -> Result<String, AgentError> {
    match v {
        serde_json::Value::String(s) if s.contains("-----BEGIN CERTIFICATE-----") => Ok(s),
        _ => Err(AgentError::Client(ClientError::Decode {
            url: route.to_string(),
            reason: "expected a PEM certificate chain".into(),
        })),
    }
}
