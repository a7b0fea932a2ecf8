//! Key rotation (`credmint keys rotate <ca|token|ledger>`) and the live key set.
//!
//! The keys in force are the ledger's: genesis pins the first key of each role and every
//! `KeyRotated` record replaces one (FORMAT.md §7.1). At start-up [`load`] rebuilds, from
//! that history alone, which token objects sign (`<label>` at genesis, `<label>-rN` after
//! the N-th rotation of that role, the label being recorded in the event) and which retired
//! keys are still needed:
//!
//! * CA: every CA generation whose certificates may still be live keeps answering OCSP and
//!   serving its own CRL (`/crl` for generation 0, `/crl/rN` after the N-th rotation), and
//!   its root stays in `ca.pem` and in the TLS client-verifier roots. It never signs a new
//!   certificate. It is retired `max credential lifetime + backdate` after the rotation
//!   (operator certificates included, so normally a year), or when its root expires.
//! * token: the old public key stays in the JWKS until the longest token it can have
//!   signed (TTL ceiling + backdate) has expired.
//! * ledger: the new key signs every checkpoint from the rotation on; auditors follow the
//!   chain from the genesis key.
//!
//! CA naming: a new CA certificate keeps the old one's subject DN exactly and differs by
//! key (and subject/authority key identifiers), like RFC 4210 §4.4 root key update. The
//! cross-certificate (new CA key certified by the old CA key) is then *self-issued*, so it
//! does not count against the genesis root's `pathlen:0` (RFC 5280 §6.1.4 (l)); with a new
//! CN it would, and openssl/Go would refuse every new leaf for clients pinning the old root.
//! Path builders tell the generations apart by key identifier, OCSP by issuer key hash.

mod build;
pub mod listener;
pub mod offline;
mod rotate;

use std::sync::{Arc, Mutex, RwLock};

use credmint_ledger::event::{Event, KeyAlgorithm, KeyInfo, KeyRole, KeyRotated};
use credmint_ledger::Ledger;
use serde_json::Value;

pub use build::{build_cross, build_successor_root};
pub use rotate::{parse_role, role_name, rotate, RotationOutcome};

use crate::ca::RootCa;
use crate::config::{Algorithm, Config};
use crate::hsm::{Hsm, HsmKey};
use crate::issuance::{jws_alg, pem_encode, BACKDATE_SECS};
use crate::keyset::KeySet;
use crate::status::ocsp::OcspIssuer;
use crate::token::{jwk, thumbprint_kid};

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("key history: {0}")]
    History(String),
    #[error(transparent)]
    Hsm(#[from] crate::hsm::HsmError),
    #[error("CA certificate: {0}")]
    Ca(String),
    /// Generating or signing with the new key failed; nothing was committed.
    #[error("key rotation unavailable: {0}")]
    Unavailable(String),
    /// The key the appliance signs with is not the ledger's key in force.
    #[error("{0}")]
    NotInForce(String),
    /// Intermediate CA mode: a successor would be a self-signed root, outside the
    /// enterprise hierarchy; the next CA certificate must come from the enterprise root.
    #[error("intermediate CA mode: the CA key cannot be rotated online (its certificate comes from the enterprise root): stop it, run `credmint ca rotate --csr`, and import the certificate")]
    IntermediateCa,
    #[error(transparent)]
    Sequence(#[from] crate::sequencer::SequenceError),
    #[error("{0}")]
    Internal(String),
}

/// One CA generation still answering status.
#[derive(Clone)]
pub struct CaGeneration {
    /// 0 for the genesis CA, N after the N-th CA rotation.
    pub generation: u32,
    /// The self-signed root of this generation.
    pub root: RootCa,
    /// For N > 0: the new key certified by the previous CA (empty DER for generation 0).
    pub cross_der: Vec<u8>,
    pub key: HsmKey,
    pub issuer: Arc<OcspIssuer>,
    /// The cRLDistributionPoint its leaves carry and its CRL's IDP.
    pub crl_url: String,
    /// Unix seconds after which it no longer answers (None: the current CA).
    pub retire_at: Option<u64>,
}

/// One token verification key published in the JWKS.
#[derive(Clone)]
pub struct TokenGeneration {
    pub kid: String,
    pub jwk: Value,
    pub retire_at: Option<u64>,
}

/// The keys in force plus the retired keys still needed, one consistent snapshot.
pub struct Active {
    /// Keys that sign new credentials and checkpoints.
    pub keys: KeySet,
    /// Current CA: `der` is its self-signed root; `pem` is the chain tail handed out after
    /// each leaf: the root for generation 0, the cross-certificate after a rotation. (Not
    /// the new root too: openssl stops at a self-signed certificate found among untrusted
    /// ones, so a client pinning only the old root would fail; with the cross-certificate
    /// alone the leaf chains to the new root directly or to the old root through it.)
    pub ca: Arc<RootCa>,
    pub ca_generation: u32,
    pub token_kid: Arc<str>,
    /// Every CA generation not yet retired, oldest first, the current one last.
    pub cas: Vec<CaGeneration>,
    /// Every token key not yet retired, oldest first, the current one last.
    pub tokens: Vec<TokenGeneration>,
    /// Rotations so far per role (CA, token, ledger): the next label suffix.
    pub rotations: [u32; 3],
}

impl Active {
    /// The CRL URL new certificates carry.
    pub fn crl_url(&self) -> &str {
        &self.cas.last().expect("current CA").crl_url
    }

    /// CA generations still answering OCSP/CRL at `now`.
    pub fn status_cas(&self, now: u64) -> impl Iterator<Item = &CaGeneration> {
        self.cas
            .iter()
            .filter(move |c| c.retire_at.is_none_or(|t| now < t))
    }

    pub fn ca_generation(&self, generation: u32, now: u64) -> Option<&CaGeneration> {
        self.status_cas(now).find(|c| c.generation == generation)
    }

    /// JWKS entries at `now`.
    pub fn jwks(&self, now: u64) -> Vec<Value> {
        self.tokens
            .iter()
            .filter(|t| t.retire_at.is_none_or(|r| now < r))
            .map(|t| t.jwk.clone())
            .collect()
    }

    /// PEM bundle of the roots relying parties should trust now, oldest first.
    pub fn roots_pem(&self, now: u64) -> String {
        self.status_cas(now).map(|c| c.root.pem.clone()).collect()
    }

    /// DER roots for the TLS client verifier.
    pub fn roots_der(&self, now: u64) -> Vec<Vec<u8>> {
        self.status_cas(now).map(|c| c.root.der.clone()).collect()
    }
}

/// Cheap, shareable handle on the live keys; swapped atomically by a rotation.
#[derive(Clone)]
pub struct LiveKeys {
    inner: Arc<RwLock<Arc<Active>>>,
    /// The listener's TLS config, reloaded when the CA roots change.
    tls: Arc<Mutex<Option<axum_server::tls_rustls::RustlsConfig>>>,
    /// One rotation at a time.
    rotating: Arc<tokio::sync::Mutex<()>>,
}

impl LiveKeys {
    pub fn new(active: Active) -> LiveKeys {
        LiveKeys {
            inner: Arc::new(RwLock::new(Arc::new(active))),
            tls: Arc::new(Mutex::new(None)),
            rotating: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The current snapshot: take it once per operation so key, certificate and URLs agree.
    pub fn current(&self) -> Arc<Active> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, active: Arc<Active>) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = active;
    }

    /// Registers the listener's TLS config so a CA rotation can update its client roots.
    pub fn set_tls(&self, tls: axum_server::tls_rustls::RustlsConfig) {
        *self.tls.lock().unwrap_or_else(|p| p.into_inner()) = Some(tls);
    }

    fn tls(&self) -> Option<axum_server::tls_rustls::RustlsConfig> {
        self.tls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for LiveKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKeys").finish_non_exhaustive()
    }
}

/// A `KeyRotated` record with its time.
pub struct HistoryEntry {
    pub index: u64,
    pub timestamp_ms: u64,
    pub rotation: KeyRotated,
}

/// Every `KeyRotated` record, in index order (the store lists their indices in its meta
/// table, so this costs one read per rotation, not a scan).
pub fn history(ledger: &Ledger) -> Result<Vec<HistoryEntry>, RotationError> {
    use credmint_ledger::store::schema::{META, META_KEY_ROTATIONS};
    let err = |e: &dyn std::fmt::Display| RotationError::History(e.to_string());
    let txn = ledger.begin_read().map_err(|e| err(&e))?;
    let meta = txn.open_table(META).map_err(|e| err(&e))?;
    let list = meta
        .get(META_KEY_ROTATIONS)
        .map_err(|e| err(&e))?
        .map(|v| v.value().to_vec())
        .unwrap_or_default();
    drop(meta);
    drop(txn);
    let mut out = Vec::new();
    for chunk in list.chunks_exact(8) {
        let index = u64::from_be_bytes(chunk.try_into().unwrap_or_default());
        let rec = ledger
            .record(index)
            .map_err(|e| err(&e))?
            .ok_or_else(|| RotationError::History(format!("record {index} missing")))?;
        if let Event::KeyRotated(r) = rec.event {
            out.push(HistoryEntry {
                index,
                timestamp_ms: rec.timestamp_ms,
                rotation: r,
            });
        }
    }
    Ok(out)
}

pub(crate) fn role_index(role: KeyRole) -> usize {
    match role {
        KeyRole::Ca => 0,
        KeyRole::Token => 1,
        KeyRole::Ledger => 2,
    }
}

pub(crate) fn algorithm(a: KeyAlgorithm) -> Algorithm {
    match a {
        KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256,
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
    }
}

/// Loads the token object `info.label` and checks it is the key the ledger names.
pub fn load_key(hsm: &Arc<Hsm>, info: &KeyInfo) -> Result<HsmKey, RotationError> {
    let key = HsmKey::load(hsm.clone(), &info.label, algorithm(info.algorithm))?;
    if key.public_key().spki_der() != info.spki_der {
        return Err(RotationError::History(format!(
            "token key {:?} is not the {:?} key the ledger has in force",
            info.label, info.role
        )));
    }
    Ok(key)
}

/// Longest lifetime of anything a CA key signs (leaves, operator and server certificates),
/// plus the notBefore backdate.
pub fn ca_overlap_secs(cfg: &Config) -> u64 {
    let days = |d: u64| d * 86_400;
    cfg.ttl
        .routine_max_secs
        .max(cfg.ttl.privileged_max_secs)
        .max(days(crate::operator::OPERATOR_CERT_DAYS.unsigned_abs()))
        .max(days(u64::from(cfg.identity.server_cert_validity_days)))
        + BACKDATE_SECS.unsigned_abs()
}

/// Longest token lifetime (TTL ceiling) plus the backdate allowance.
pub fn token_overlap_secs(cfg: &Config) -> u64 {
    cfg.ttl.routine_max_secs.max(cfg.ttl.privileged_max_secs) + BACKDATE_SECS.unsigned_abs()
}

pub fn crl_url(status_url: &str, generation: u32) -> String {
    if generation == 0 {
        format!("{status_url}/crl")
    } else {
        format!("{status_url}/crl/r{generation}")
    }
}

pub(crate) fn not_after(der: &[u8]) -> Result<u64, RotationError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| RotationError::Ca(e.to_string()))?;
    Ok(u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0))
}

fn root_ca(der: &[u8]) -> RootCa {
    RootCa {
        der: der.to_vec(),
        pem: pem_encode("CERTIFICATE", der),
    }
}

fn raw_public(info: &KeyInfo) -> Vec<u8> {
    let n = match info.algorithm {
        KeyAlgorithm::EcdsaP256 => 65,
        KeyAlgorithm::Ed25519 => 32,
    };
    info.spki_der[info.spki_der.len().saturating_sub(n)..].to_vec()
}

fn token_generation(
    info: &KeyInfo,
    retire_at: Option<u64>,
) -> Result<TokenGeneration, RotationError> {
    let alg = match info.algorithm {
        KeyAlgorithm::EcdsaP256 => crate::token::JwsAlg::Es256,
        KeyAlgorithm::Ed25519 => crate::token::JwsAlg::EdDsa,
    };
    let raw = raw_public(info);
    let bad = |e: crate::token::JwkError| RotationError::History(e.to_string());
    let kid = thumbprint_kid(&raw, alg).map_err(bad)?;
    Ok(TokenGeneration {
        jwk: jwk(&raw, alg, &kid).map_err(bad)?,
        kid,
        retire_at,
    })
}

/// Rebuilds the live key set from the ledger's key history (blocking: PKCS#11).
pub fn load(
    hsm: Arc<Hsm>,
    cfg: &Config,
    ledger: &Ledger,
    status_url: &str,
    now: u64,
) -> Result<Active, RotationError> {
    let genesis = match ledger
        .record(0)
        .map_err(|e| RotationError::History(e.to_string()))?
    {
        Some(r) => match r.event {
            Event::Genesis(g) => g,
            _ => return Err(RotationError::History("record 0 is not genesis".into())),
        },
        None => return Err(RotationError::History("empty ledger".into())),
    };
    let first = |role| {
        genesis
            .keys
            .iter()
            .find(|k| k.role == role)
            .cloned()
            .ok_or_else(|| RotationError::History(format!("genesis has no {role:?} key")))
    };
    // Per role: (key info, rotated-in at ms) from oldest to newest.
    let mut ca_chain = vec![(
        first(KeyRole::Ca)?,
        0u64,
        genesis.ca_certificate_der.clone(),
        Vec::new(),
    )];
    let mut token_chain = vec![(first(KeyRole::Token)?, 0u64)];
    let mut rotations = [0u32; 3];
    for h in history(ledger)? {
        let r = h.rotation;
        rotations[role_index(r.role)] += 1;
        match r.role {
            KeyRole::Ca => ca_chain.push((
                r.new_key,
                h.timestamp_ms,
                r.ca_certificate_der,
                r.cross_certificate_der,
            )),
            KeyRole::Token => token_chain.push((r.new_key, h.timestamp_ms)),
            KeyRole::Ledger => {}
        }
    }
    let in_force = ledger.keys_in_force();
    let current = |role| {
        in_force
            .iter()
            .find(|k| k.role == role)
            .cloned()
            .ok_or_else(|| RotationError::History(format!("no {role:?} key in force")))
    };
    let keys = KeySet {
        ca: load_key(&hsm, &current(KeyRole::Ca)?)?,
        token: load_key(&hsm, &current(KeyRole::Token)?)?,
        ledger: load_key(&hsm, &current(KeyRole::Ledger)?)?,
    };
    let ca_overlap = ca_overlap_secs(cfg);
    let mut cas = Vec::new();
    let last_ca = ca_chain.len() - 1;
    for (g, (info, _, der, cross)) in ca_chain.iter().enumerate() {
        let retire_at = if g == last_ca {
            None
        } else {
            let rotated = ca_chain[g + 1].1 / 1000;
            Some((rotated + ca_overlap).min(not_after(der)?))
        };
        if retire_at.is_some_and(|t| now >= t) {
            continue;
        }
        let key = if g == last_ca {
            keys.ca.clone()
        } else {
            load_key(&hsm, info)?
        };
        let generation = u32::try_from(g).unwrap_or(u32::MAX);
        cas.push(CaGeneration {
            generation,
            root: root_ca(der),
            cross_der: cross.clone(),
            key,
            issuer: Arc::new(
                OcspIssuer::from_ca_der(der).map_err(|e| RotationError::Ca(e.to_string()))?,
            ),
            crl_url: crl_url(status_url, generation),
            retire_at,
        });
    }
    let token_overlap = token_overlap_secs(cfg);
    let mut tokens = Vec::new();
    let last_token = token_chain.len() - 1;
    for (g, (info, _)) in token_chain.iter().enumerate() {
        let retire_at = (g != last_token).then(|| token_chain[g + 1].1 / 1000 + token_overlap);
        if retire_at.is_some_and(|t| now >= t) {
            continue;
        }
        tokens.push(token_generation(info, retire_at)?);
    }
    assemble(keys, cas, tokens, rotations)
}

/// The snapshot for `keys` (in force) and the generations still needed.
pub(crate) fn assemble(
    keys: KeySet,
    cas: Vec<CaGeneration>,
    tokens: Vec<TokenGeneration>,
    rotations: [u32; 3],
) -> Result<Active, RotationError> {
    let current = cas
        .last()
        .ok_or_else(|| RotationError::Ca("no CA generation".into()))?;
    if current.root.der.is_empty() {
        return Err(RotationError::Ca("current CA certificate missing".into()));
    }
    let tail = if current.cross_der.is_empty() {
        current.root.pem.clone()
    } else {
        pem_encode("CERTIFICATE", &current.cross_der)
    };
    let ca = Arc::new(RootCa {
        der: current.root.der.clone(),
        pem: tail,
    });
    let kid = thumbprint_kid(&keys.token.public_key().raw, jws_alg(&keys.token))
        .map_err(|e| RotationError::History(e.to_string()))?;
    Ok(Active {
        ca_generation: current.generation,
        ca,
        token_kid: kid.into(),
        keys,
        cas,
        tokens,
        rotations,
    })
}

/// Writes `ca-rN.pem` (and `ca-cross-rN.pem`) for every CA generation and, when the CA was
/// ever rotated, `ca.pem` as the bundle of the roots still in use (oldest first).
pub fn write_ca_files(cfg: &Config, active: &Active, now: u64) -> std::io::Result<()> {
    if active.cas.len() == 1 && active.ca_generation == 0 {
        return Ok(());
    }
    for c in &active.cas {
        std::fs::write(
            cfg.data_dir.join(format!("ca-r{}.pem", c.generation)),
            &c.root.pem,
        )?;
        if !c.cross_der.is_empty() {
            std::fs::write(
                cfg.data_dir.join(format!("ca-cross-r{}.pem", c.generation)),
                pem_encode("CERTIFICATE", &c.cross_der),
            )?;
        }
    }
    let path = cfg.ca_cert_path();
    let tmp = path.with_extension("pem.tmp");
    std::fs::write(&tmp, active.roots_pem(now))?;
    std::fs::rename(&tmp, &path)
}
