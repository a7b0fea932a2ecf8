//! Credential verbs: `credmint revoke` and `credmint status` (operator side, through the
//! appliance's config), `credmint renew` and `credmint token` (workload side: only the
//! workload's own certificate, key and the CA file, no appliance config needed).

use std::path::{Path, PathBuf};

use super::{print_json, CliError, Conn};
use crate::client::{ClientError, OperatorClient};
use crate::config::Config;
use crate::wire::{CertRequest, IssuedToken, ReasonBody, TokenRequest};

/// A certificate serial or a token jti, as typed by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialId {
    /// Hex serial (colons and `0x` allowed), normalised to lowercase hex.
    Serial(String),
    Jti(String),
}

/// Length of the jtis this appliance mints (16 random bytes, base64url).
const JTI_LEN: usize = 22;

impl CredentialId {
    /// A serial when it is hex and not jti-shaped; `--token` or `--certificate` decide
    /// the rare ambiguous case.
    pub fn parse(id: &str, kind: Option<Kind>) -> Result<CredentialId, CliError> {
        let serial = crate::revoke::parse_serial(id).ok().map(hex::encode);
        match (kind, serial) {
            (Some(Kind::Token), _) => Ok(CredentialId::Jti(id.to_string())),
            (Some(Kind::Certificate), Some(s)) => Ok(CredentialId::Serial(s)),
            (Some(Kind::Certificate), None) => Err(CliError::Other(format!(
                "{id:?} is not a certificate serial (1-20 bytes of hex)"
            ))),
            (None, Some(s)) if id.len() != JTI_LEN => Ok(CredentialId::Serial(s)),
            (None, _) => Ok(CredentialId::Jti(id.to_string())),
        }
    }
}

/// What an ID names, when it could be either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Certificate,
    Token,
}

/// How a workload reaches the appliance: its own certificate, no appliance config.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkloadConn {
    /// Appliance base URL, e.g. https://credmint.internal:8443.
    #[arg(long, env = "CREDMINT_URL")]
    pub url: String,
    /// CA bundle to trust (PEM; what GET /v1/ca.pem serves).
    #[arg(long, env = "CREDMINT_CA", value_name = "PEM")]
    pub ca: PathBuf,
    /// The workload's current certificate chain (PEM).
    #[arg(long, value_name = "PEM")]
    pub cert: PathBuf,
    /// The workload's private key (PEM, PKCS#8).
    #[arg(long, value_name = "PEM")]
    pub key: PathBuf,
}

impl WorkloadConn {
    fn client(&self) -> Result<OperatorClient, CliError> {
        Ok(OperatorClient::connect(
            &self.url,
            &self.ca,
            Some((&self.cert, &self.key)),
        )?)
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

/// `credmint revoke ID --reason R`.
pub async fn revoke(
    cfg: &Config,
    id: &str,
    kind: Option<Kind>,
    reason: String,
    conn: &Conn,
) -> Result<(), CliError> {
    let path = match CredentialId::parse(id, kind)? {
        CredentialId::Serial(s) => format!("/v1/admin/certificates/{s}/revoke"),
        CredentialId::Jti(j) => format!("/v1/admin/tokens/{j}/revoke"),
    };
    let op = OperatorClient::new(&conn.target(cfg))?;
    print_json(&op.post(&path, &ReasonBody { reason }).await?);
    Ok(())
}

/// `credmint status ID`: the public status answer (no operator certificate needed).
pub async fn status(
    cfg: &Config,
    id: &str,
    kind: Option<Kind>,
    url: Option<String>,
) -> Result<(), CliError> {
    let path = match CredentialId::parse(id, kind)? {
        CredentialId::Serial(s) => format!("/v1/status/{s}"),
        CredentialId::Jti(j) => format!("/v1/status/token/{j}"),
    };
    let target = crate::client::Target::from_config(cfg, url);
    let client = OperatorClient::connect(&target.base, &target.ca, None)?;
    print_json(&client.get(&path).await?);
    Ok(())
}

/// `credmint renew`: a new certificate for the same key over the current one's mTLS,
/// written to `out` (temp file and rename, so a failure leaves the old one in place).
pub async fn renew(conn: &WorkloadConn, ttl: Option<u64>, out: &Path) -> Result<(), CliError> {
    let key_pem = read(&conn.key)?;
    let key = rcgen::KeyPair::from_pem(&key_pem)
        .map_err(|e| CliError::Other(format!("{}: {e}", conn.key.display())))?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| CliError::Other(format!("CSR: {e}")))?;
    let body = CertRequest { csr, ttl_secs: ttl };
    let chain = conn.client()?.post("/v1/renew", &body).await?;
    let Some(chain) = chain.as_str() else {
        return Err(ClientError::Decode {
            url: format!("{}/v1/renew", conn.url),
            reason: "expected a PEM certificate chain".into(),
        }
        .into());
    };
    let tmp = out.with_extension("new");
    let io = |source| CliError::Io {
        path: tmp.clone(),
        source,
    };
    std::fs::write(&tmp, chain).map_err(io)?;
    std::fs::rename(&tmp, out).map_err(io)?;
    eprintln!("renewed certificate written to {}", out.display());
    Ok(())
}

/// `credmint token`: prints the JWT alone on stdout (or the whole answer with `json`).
pub async fn token(
    conn: &WorkloadConn,
    request: &TokenRequest,
    json: bool,
) -> Result<(), CliError> {
    let issued: IssuedToken = conn.client()?.post_as("/v1/tokens", request).await?;
    if json {
        print_json(&serde_json::to_value(&issued).unwrap_or_default());
    } else {
        println!("{}", issued.token);
        eprintln!("jti {} expires {}", issued.jti, issued.expires_at);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_apart() {
        let serial = "5f1c2a9e0b7d4c3a8e6f1b2d3c4a5e6f";
        assert_eq!(
            CredentialId::parse(serial, None).unwrap(),
            CredentialId::Serial(serial.into())
        );
        assert_eq!(
            CredentialId::parse("5F:1C", None).unwrap(),
            CredentialId::Serial("5f1c".into())
        );
        let jti = "q3JxV0Zr1yS9dO4nT2bKc8";
        assert_eq!(
            CredentialId::parse(jti, None).unwrap(),
            CredentialId::Jti(jti.into())
        );
        // Hex-only and jti-shaped: a jti unless told otherwise.
        let both = "0123456789abcdef012345";
        assert_eq!(
            CredentialId::parse(both, None).unwrap(),
            CredentialId::Jti(both.into())
        );
        assert!(matches!(
            CredentialId::parse(both, Some(Kind::Certificate)).unwrap(),
            CredentialId::Serial(_)
        ));
        assert!(CredentialId::parse("not-hex", Some(Kind::Certificate)).is_err());
    }
}
