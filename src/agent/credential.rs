//! The credential the agent holds: a key it generated itself and the certificate chain
//! the appliance issued for it, with what the schedule needs (serial, lifetime, when it
//! arrived). Kept in `state/` (0700) so a restarted agent resumes instead of re-enrolling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::AgentError;
use crate::hsm::HsmKey;

/// The private half of the agent's credential.
#[derive(Clone)]
pub enum AgentKey {
    /// PKCS#8 PEM, generated here, kept in `state/` and delivered as `key.pem`.
    File(Zeroizing<String>),
    /// A key pair inside the workload's own PKCS#11 token.
    Token(Arc<HsmKey>),
}

impl AgentKey {
    fn spki_der(&self) -> Result<Vec<u8>, AgentError> {
        match self {
            AgentKey::File(pem) => {
                let key =
                    rcgen::KeyPair::from_pem(pem).map_err(|e| AgentError::Key(e.to_string()))?;
                Ok(rcgen::PublicKeyData::subject_public_key_info(&key))
            }
            AgentKey::Token(key) => Ok(key.public_key().spki_der()),
        }
    }

    /// The PEM of a file key (`None` for a token key, which never leaves the token).
    pub fn pem(&self) -> Option<&str> {
        match self {
            AgentKey::File(pem) => Some(pem),
            AgentKey::Token(_) => None,
        }
    }
}

/// Where the agent's keys come from.
pub enum KeySource {
    /// A fresh P-256 key for every certificate, generated here.
    Files,
    /// The one key pair of the workload's token, for every certificate.
    Token(Arc<HsmKey>),
}

impl KeySource {
    /// Opens the token and finds (or generates, inside it) the key pair of `cfg`.
    pub fn token(cfg: &super::config::Pkcs11KeyConfig) -> Result<KeySource, AgentError> {
        use crate::config::Algorithm;
        let hsm = Arc::new(crate::hsm::Hsm::open(&cfg.hsm())?);
        let outcome =
            crate::hsm::keys::ensure_key_pair(&hsm, &cfg.key_label, Algorithm::EcdsaP256)?;
        tracing::info!(key = %cfg.uri(), ?outcome, "agent key in the PKCS#11 token");
        let key = HsmKey::load(hsm, &cfg.key_label, Algorithm::EcdsaP256)?;
        Ok(KeySource::Token(Arc::new(key)))
    }

    /// The key for the next certificate and a CSR for it. The appliance decides every
    /// name in the certificate from the integration's policy, so the CSR carries only the
    /// public key and its proof of possession.
    pub fn next(&self) -> Result<(AgentKey, String), AgentError> {
        let failed = |e: rcgen::Error| AgentError::Key(e.to_string());
        let params = rcgen::CertificateParams::default();
        match self {
            KeySource::Files => {
                let key =
                    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
                let csr = params
                    .serialize_request(&key)
                    .and_then(|r| r.pem())
                    .map_err(failed)?;
                Ok((AgentKey::File(Zeroizing::new(key.serialize_pem())), csr))
            }
            KeySource::Token(key) => {
                let csr = params
                    .serialize_request(key.as_ref())
                    .and_then(|r| r.pem())
                    .map_err(failed)?;
                Ok((AgentKey::Token(key.clone()), csr))
            }
        }
    }
}

/// A certificate chain and its key.
#[derive(Clone)]
pub struct Held {
    /// Leaf first, then the issuing CA.
    pub chain_pem: String,
    pub key: AgentKey,
    /// Lowercase hex, as the appliance's routes name it.
    pub serial: String,
    pub not_after_ms: u64,
    /// When the agent received it (unix ms): the schedule counts the lifetime from here.
    pub obtained_ms: u64,
    /// The SPIFFE ID in the URI SAN, if any.
    pub spiffe_id: Option<String>,
    /// The leaf and CA certificates, DER, in chain order (for the Workload API).
    pub chain_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("serial", &self.serial)
            .field("not_after_ms", &self.not_after_ms)
            .field("spiffe_id", &self.spiffe_id)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// Parses the appliance's answer (a PEM chain) for `key`.
    pub fn new(chain_pem: String, key: AgentKey, obtained_ms: u64) -> Result<Held, AgentError> {
        let bad = |why: String| AgentError::Answer(format!("certificate chain: {why}"));
        let chain_der: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(chain_pem.as_bytes())
            .map(|p| p.map(|p| p.contents).map_err(|e| bad(e.to_string())))
            .collect::<Result<_, _>>()?;
        let leaf = chain_der.first().ok_or_else(|| bad("empty".into()))?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(leaf).map_err(|e| bad(e.to_string()))?;
        let spiffe_id = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|san| {
                san.value.general_names.iter().find_map(|n| match n {
                    x509_parser::extensions::GeneralName::URI(u) if u.starts_with("spiffe://") => {
                        Some(u.to_string())
                    }
                    _ => None,
                })
            });
        if key.spki_der()? != cert.public_key().raw {
            return Err(bad("it does not certify the agent's key".into()));
        }
        let not_after = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or(0);
        Ok(Held {
            serial: hex::encode(cert.raw_serial()),
            not_after_ms: not_after.saturating_mul(1000),
            obtained_ms,
            spiffe_id,
            chain_pem,
            key,
            chain_der,
        })
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.not_after_ms
    }
}

/// What `state/` holds besides the credential: when it arrived, and the hash of the last
/// enrollment token spent or refused, so the same token is never presented twice (a
/// second presentation is recorded by the appliance as reuse).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memo {
    #[serde(default)]
    pub obtained_ms: u64,
    #[serde(default)]
    pub spent_token_sha256: Option<String>,
}

/// The state directory's files.
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn open(dir: &Path) -> Result<StateDir, AgentError> {
        // The agent's `dir` with the default mode (its files are for others to read);
        // only `state/` itself is private.
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| AgentError::io(parent, e))?;
        }
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(AgentError::io(dir, e)),
        }
        Ok(StateDir {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn memo(&self) -> Memo {
        std::fs::read(self.path("memo.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_memo(&self, memo: &Memo) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec(memo).unwrap_or_default();
        self.write("memo.json", &bytes)
    }

    /// The credential a previous run left, if its files are there, parse and match the
    /// key (the token's, or `key.pem`).
    pub fn load(&self, keys: &KeySource) -> Option<Held> {
        let chain = std::fs::read_to_string(self.path("chain.pem")).ok()?;
        let key = match keys {
            KeySource::Files => AgentKey::File(Zeroizing::new(
                std::fs::read_to_string(self.path("key.pem")).ok()?,
            )),
            KeySource::Token(key) => AgentKey::Token(key.clone()),
        };
        Held::new(chain, key, self.memo().obtained_ms).ok()
    }

    /// Keeps `held`. A crash between the two files leaves a key and chain that do not
    /// match, which `load` refuses (`Held::new` checks the pair): the agent then asks for
    /// a new enrollment token rather than serve a broken pair.
    pub fn store(&self, held: &Held) -> Result<(), AgentError> {
        if let Some(pem) = held.key.pem() {
            self.write("key.pem", pem.as_bytes())?;
        }
        self.write("chain.pem", held.chain_pem.as_bytes())?;
        let mut memo = self.memo();
        memo.obtained_ms = held.obtained_ms;
        self.save_memo(&memo)
    }

    /// Drops the credential (revoked, expired past renewal, job over): only the memo of
    /// the spent token stays.
    pub fn forget(&self) -> Result<(), AgentError> {
        for name in ["chain.pem", "key.pem"] {
            let path = self.path(name);
            crate::fsutil::remove_if_present(&path).map_err(|e| AgentError::io(&path, e))?;
        }
        crate::fsutil::sync_dir(&self.dir).map_err(|e| AgentError::io(&self.dir, e))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), AgentError> {
        let path = self.path(name);
        crate::fsutil::write_atomically(&path, bytes, 0o600).map_err(|e| AgentError::io(&path, e))
    }
}
