//! Issuance orchestration: decided grant -> HSM signature -> durable ledger append ->
//! credential. The order is the point: a credential leaves this module only after the
//! writer confirmed its event is committed; if signing or the commit fails, nothing is
//! returned and nothing half-written remains.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::net::IpAddr;

use credmint_ledger::event::{CertificateIssued, TokenIssued};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::ca::serial::random_serial;
use crate::ca::RootCa;
use crate::clock::Clock;
use crate::hsm::{Admission, HsmKey, Overloaded};
use crate::issue::{build_leaf, Governance, LeafError, LeafSpec, ValidCsr};
use crate::policy::{CertGrant, TokenGrant};
use crate::rotation::LiveKeys;
use crate::sequencer::{Actor, Basis, Command, Op, SequenceError, Sequencer};
use crate::token::{sign_jwt, JwsAlg, TokenClaims};

/// Why nothing was issued. Nothing half-written remains in any case.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Refused before any HSM time was spent: too many signatures in flight.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// Refused before signing: the sequencer queue is full.
    #[error("sequencer queue is full")]
    QueueFull,
    /// Refused before signing: the HSM is away and the appliance is reconnecting.
    #[error(transparent)]
    Hsm(crate::hsm::HsmError),
    #[error(transparent)]
    Leaf(#[from] LeafError),
    #[error("token signing: {0}")]
    TokenSigning(String),
    #[error("signing task: {0}")]
    Task(String),
    #[error(transparent)]
    Sequence(#[from] SequenceError),
}

/// What issuance needs of the appliance: keys, the sequencer, admission, clock, URLs.
#[derive(Clone)]
pub struct Issuer {
    pub keys: LiveKeys,
    pub sequencer: Sequencer,
    pub admission: Admission,
    pub clock: Clock,
    /// Base URL relying parties reach (token `iss`).
    pub public_url: std::sync::Arc<str>,
    /// Base URL of OCSP and CRLs in certificates (`Config::status_url`).
    pub status_url: std::sync::Arc<str>,
    pub ledger_origin: String,
}

impl Issuer {
    /// Admission before the HSM: a signature slot, and room in the sequencer queue for
    /// what will be signed. Overload is refused here, before any `C_Sign`.
    fn admit(&self) -> Result<crate::hsm::Admitted, IssueError> {
        if let Some(down) = self.hsm_down() {
            return Err(down);
        }
        if !self.sequencer.has_room() {
            return Err(IssueError::QueueFull);
        }
        Ok(self.admission.try_admit()?)
    }

    /// `Some` while the HSM is away (every key lives in the same token).
    fn hsm_down(&self) -> Option<IssueError> {
        self.keys
            .current()
            .keys
            .ca
            .hsm()
            .unavailable()
            .map(IssueError::Hsm)
    }

    /// A signing failure, reported as the HSM outage it started if it did.
    fn signing_failed(&self, e: IssueError) -> IssueError {
        self.hsm_down().unwrap_or(e)
    }
}

/// notBefore is backdated this much to absorb relying parties' clock skew. Documented in
/// FORMAT.md: the auditor allows TTL + this much between notBefore and notAfter.
pub const BACKDATE_SECS: i64 = 30;

/// A certificate whose issuance event is durable.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub der: Vec<u8>,
    /// Leaf followed by the CA certificate.
    pub chain_pem: String,
    pub serial: Vec<u8>,
    pub not_after: u64,
    pub ledger_index: u64,
}

/// Validity window for a credential of `ttl_secs` starting at `now`.
pub fn validity(now: OffsetDateTime, ttl_secs: u64) -> (OffsetDateTime, OffsetDateTime) {
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
    (
        now - Duration::seconds(BACKDATE_SECS),
        now + Duration::seconds(ttl),
    )
}

/// Builds the leaf spec for a decided grant.
pub fn leaf_spec(issuer: &Issuer, grant: &CertGrant, now: OffsetDateTime) -> LeafSpec {
    let (not_before, not_after) = validity(now, grant.ttl_secs);
    LeafSpec {
        serial: random_serial(),
        spiffe_id: grant.spiffe_id.clone(),
        dns_names: grant.dns_names.clone(),
        common_name: grant.common_name.clone(),
        not_before,
        not_after,
        client_auth: grant.client_auth,
        server_auth: grant.server_auth,
        ocsp_url: format!("{}/ocsp", issuer.status_url),
        crl_url: issuer.keys.current().crl_url().to_string(),
        governance: Governance {
            integration: grant.integration.clone(),
            approval_ref: grant.approval_ref.clone(),
            ledger_origin: issuer.ledger_origin.clone(),
        },
    }
}

/// Signs a leaf with the HSM CA key (blocking).
pub fn sign_leaf(
    spec: &LeafSpec,
    spki_der: &[u8],
    ca: &RootCa,
    ca_key: &HsmKey,
) -> Result<Vec<u8>, LeafError> {
    build_leaf(spec, spki_der, &ca.der, ca_key)
}

pub fn pem_chain(leaf_der: &[u8], ca: &RootCa) -> String {
    let leaf = pem_encode("CERTIFICATE", leaf_der);
    format!("{leaf}{}", ca.pem)
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unix(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

/// Signs `grant`'s certificate for `csr` and sequences its issuance (spending the
/// enrollment token whose hash is `enrollment`, if any); returns it once durable.
pub async fn issue_certificate(
    issuer: &Issuer,
    grant: &CertGrant,
    csr: &ValidCsr,
    actor: Actor,
    enrollment: Option<[u8; 32]>,
    peer: Option<IpAddr>,
) -> Result<IssuedCert, IssueError> {
    let admitted = issuer.admit()?;
    // One key snapshot: the CA that signs is the one whose chain and CRL URL the leaf gets.
    let active = issuer.keys.current();
    let mut spec = leaf_spec(issuer, grant, issuer.clock.now());
    spec.crl_url = active.crl_url().to_string();
    let serial = spec.serial.to_vec();
    let (act, sp, spki) = (active.clone(), spec.clone(), csr.spki_der.clone());
    // The permit lives with the signature, not the request: a caller that goes away does
    // not free a slot while its signature still occupies the HSM.
    let der = tokio::task::spawn_blocking(move || {
        let _admitted = admitted;
        sign_leaf(&sp, &spki, &act.ca, &act.keys.ca)
    })
    .await
    .map_err(|e| IssueError::Task(e.to_string()))?
    .map_err(|e| issuer.signing_failed(e.into()))?;
    let cert = CertificateIssued {
        serial: serial.clone(),
        integration: grant.integration.clone(),
        subject: grant.spiffe_id.clone(),
        not_before: unix(spec.not_before),
        not_after: unix(spec.not_after),
        key_fingerprint: csr.key_fingerprint,
    };
    let basis = Basis {
        spec: grant.spec_hash,
        signer_spki: active.keys.ca.public_key().spki_der(),
    };
    let op = Op::IssueCertificate {
        cert,
        enrollment,
        basis,
        peer,
    };
    let receipt = issuer.sequencer.submit(Command::new(actor, op)).await?;
    let ledger_index = receipt.first_index().unwrap_or_default();
    tracing::info!(
        integration = %grant.integration,
        serial = %hex::encode(&serial),
        ledger_index,
        "certificate issued"
    );
    Ok(IssuedCert {
        chain_pem: pem_chain(&der, &active.ca),
        der,
        serial,
        not_after: unix(spec.not_after),
        ledger_index,
    })
}

/// A token whose issuance event is durable.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub jwt: String,
    pub jti: String,
    pub expires_at: u64,
    pub ledger_index: u64,
}

pub fn jws_alg(key: &HsmKey) -> JwsAlg {
    match key.algorithm() {
        crate::config::Algorithm::EcdsaP256 => JwsAlg::Es256,
        crate::config::Algorithm::Ed25519 => JwsAlg::EdDsa,
    }
}

/// Signs a JWT for `grant` with the HSM token key and sequences `TokenIssued`. The
/// actor's certificate (the workload's) must still be unrevoked when it commits.
pub async fn issue_token(
    issuer: &Issuer,
    grant: &TokenGrant,
    actor: Actor,
    peer: Option<IpAddr>,
) -> Result<IssuedToken, IssueError> {
    let admitted = issuer.admit()?;
    let mut id = [0u8; 16];
    rand::fill(&mut id);
    let jti = URL_SAFE_NO_PAD.encode(id);
    let now = issuer.clock.now();
    let ttl = Duration::seconds(i64::try_from(grant.ttl_secs).unwrap_or(i64::MAX / 2));
    let claims = TokenClaims::new(
        issuer.public_url.to_string(),
        grant.spiffe_id.clone(),
        vec![grant.audience.clone()],
        now,
        ttl,
        jti.clone(),
    )
    .with_scopes(&grant.scopes)
    .with_env(grant.environment.clone())
    .with_approval_ref(grant.approval_ref.clone());
    let active = issuer.keys.current();
    let (key, kid, value) = (
        active.keys.token.clone(),
        active.token_kid.clone(),
        claims.to_value(),
    );
    let jwt = tokio::task::spawn_blocking(move || {
        let _admitted = admitted;
        sign_jwt(jws_alg(&key), &kid, &value, |input| key.sign_raw(input))
    })
    .await
    .map_err(|e| IssueError::Task(e.to_string()))?
    .map_err(|e| issuer.signing_failed(IssueError::TokenSigning(e.to_string())))?;
    let token = TokenIssued {
        jti: jti.clone(),
        integration: grant.integration.clone(),
        subject: grant.spiffe_id.clone(),
        audience: grant.audience.clone(),
        scopes: grant.scopes.clone(),
        issued_at: u64::try_from(claims.iat).unwrap_or(0),
        expires_at: u64::try_from(claims.exp).unwrap_or(0),
        key_fingerprint: Sha256::digest(active.keys.token.public_key().spki_der()).into(),
    };
    let basis = Basis {
        spec: grant.spec_hash,
        signer_spki: active.keys.token.public_key().spki_der(),
    };
    let receipt = issuer
        .sequencer
        .submit(Command::new(actor, Op::IssueToken { token, basis, peer }))
        .await?;
    let ledger_index = receipt.first_index().unwrap_or_default();
    tracing::info!(integration = %grant.integration, %jti, ledger_index, "token issued");
    Ok(IssuedToken {
        jwt,
        jti,
        expires_at: u64::try_from(claims.exp).unwrap_or(0),
        ledger_index,
    })
}
