//! HTTPS client used by the operator CLI verbs and `bench issue`: trusts only the
//! appliance's CA and presents the operator certificate, like any other client would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error("{status}: {message}")]
    Refused { status: u16, message: String },
    /// A 2xx answer whose body is not the documented shape (`crate::wire`).
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
}

/// Where to reach the appliance and with which identity.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Target {
    /// Defaults from the config: the public URL and the files `init` wrote.
    pub fn from_config(cfg: &Config, url: Option<String>) -> Target {
        Target {
            base: url.unwrap_or_else(|| cfg.public_url(cfg.server.listen.port())),
            ca: cfg.ca_cert_path(),
            cert: cfg.operator_cert_path(),
            key: cfg.operator_key_path(),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A client trusting `ca` and presenting `identity_pem` (certificate chain + key), if any.
pub fn build(ca_pem: &[u8], identity_pem: Option<&[u8]>) -> Result<reqwest::Client, ClientError> {
    let tls = |e: reqwest::Error| ClientError::Tls(e.to_string());
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).map_err(tls)?])
        .timeout(Duration::from_secs(30));
    if let Some(pem) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(pem).map_err(tls)?);
    }
    builder.build().map_err(tls)
}

/// Session against one appliance, as an operator (most verbs), a workload (`renew`,
/// `token`) or anonymously (`status`).
pub struct OperatorClient {
    pub base: String,
    http: reqwest::Client,
}

impl OperatorClient {
    pub fn new(target: &Target) -> Result<OperatorClient, ClientError> {
        OperatorClient::connect(&target.base, &target.ca, Some((&target.cert, &target.key)))
    }

    /// A session trusting the CA file `ca`, presenting the certificate chain and key files
    /// of `identity` (an operator's or a workload's), or none for the public routes.
    pub fn connect(
        base: &str,
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<OperatorClient, ClientError> {
        let identity = match identity {
            Some((cert, key)) => {
                let mut pem = read(cert)?;
                pem.extend(read(key)?);
                Some(zeroize::Zeroizing::new(pem))
            }
            None => None,
        };
        OperatorClient::from_pem(base, &read(ca)?, identity.as_deref().map(Vec::as_slice))
    }

    /// As [`OperatorClient::connect`], from PEM bytes already in memory (the agent's).
    pub fn from_pem(
        base: &str,
        ca_pem: &[u8],
        identity_pem: Option<&[u8]>,
    ) -> Result<OperatorClient, ClientError> {
        Ok(OperatorClient {
            base: base.trim_end_matches('/').to_string(),
            http: build(ca_pem, identity_pem)?,
        })
    }

    /// A session presenting `chain_der` whose key is `key`, inside a PKCS#11 token: the
    /// TLS handshake's CertificateVerify is signed there (ECDSA P-256, SHA-256).
    pub fn with_token_key(
        base: &str,
        ca_pem: &[u8],
        chain_der: Vec<Vec<u8>>,
        key: std::sync::Arc<crate::hsm::HsmKey>,
    ) -> Result<OperatorClient, ClientError> {
        let tls = |e: String| ClientError::Tls(e);
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        for der in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(der.map_err(|e| tls(e.to_string()))?)
                .map_err(|e| tls(e.to_string()))?;
        }
        let chain = chain_der
            .into_iter()
            .map(rustls::pki_types::CertificateDer::from)
            .collect();
        let certified =
            rustls::sign::CertifiedKey::new(chain, std::sync::Arc::new(TokenTlsKey(key)));
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_cert_resolver(std::sync::Arc::new(Presents(std::sync::Arc::new(
                certified,
            ))));
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| tls(e.to_string()))?;
        Ok(OperatorClient {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call::<()>(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body (a `crate::wire` request).
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Value, ClientError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `POST path` and decode the answer as `R` (a `crate::wire` response).
    pub async fn post_as<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, ClientError> {
        let v = self.post(path, body).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// `GET path` and decode the answer as `R`.
    pub async fn get_as<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClientError> {
        let v = self.get(path).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })
    }

    /// Sends a request; non-2xx answers become `Refused` with the server's message.
    pub async fn call<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Value, ClientError> {
        self.call_as(method, path, body, None).await
    }

    /// As [`OperatorClient::call`], with `Authorization: Bearer <bearer>` when given (an
    /// enrollment token: sent, never logged).
    pub async fn call_as<B: Serialize + ?Sized>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        bearer: Option<&str>,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let message = value["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        Ok(value)
    }

    /// `GET path`: the raw body (a DER CRL, a PEM bundle).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let resp = self.http.get(&url).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(transport)?;
        if !(200..300).contains(&status) {
            let message = String::from_utf8_lossy(&body).into_owned();
            return Err(ClientError::Refused { status, message });
        }
        Ok(body.to_vec())
    }

    /// Streams a GET response body into `out` (temp file, fsync, rename); returns bytes.
    pub async fn download(&self, path: &str, out: &Path) -> Result<u64, ClientError> {
        use std::io::Write;
        let url = format!("{}{path}", self.base);
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut resp = self.http.get(&url).send().await.map_err(transport)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let message = resp.text().await.unwrap_or_default();
            return Err(ClientError::Refused { status, message });
        }
        let tmp = out.with_extension("part");
        let io = |source| ClientError::Read {
            path: tmp.clone(),
            source,
        };
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            file.write_all(&chunk).map_err(io)?;
            n += chunk.len() as u64;
        }
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, out).map_err(io)?;
        Ok(n)
    }
}

/// A token key as rustls sees a client key: it offers ECDSA P-256 with SHA-256 only.
#[derive(Debug)]
struct TokenTlsKey(std::sync::Arc<crate::hsm::HsmKey>);

impl rustls::sign::SigningKey for TokenTlsKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&rustls::SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(TokenTlsSigner(self.0.clone())) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct TokenTlsSigner(std::sync::Arc<crate::hsm::HsmKey>);

impl rustls::sign::Signer for TokenTlsSigner {
    /// DER ECDSA over SHA-256 of the handshake transcript: what `sign_x509` makes.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign_x509(message)
            .map_err(|e| rustls::Error::General(format!("token signature: {e}")))
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

/// Presents the one certificate it holds to every server that asks.
#[derive(Debug)]
struct Presents(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Presents {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
