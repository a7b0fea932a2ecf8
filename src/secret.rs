//! Where secrets (HSM PINs) come from, and the redacting type that carries them.
//!
//! The config names a *source* (environment variable or file), never the value, so the
//! config file can be shared, versioned and hashed into the genesis event.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// Where a secret is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Name of an environment variable holding the secret.
    Env(String),
    /// Path of a file holding the secret (trailing newline ignored); relative to data_dir.
    File(PathBuf),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {source_name}: environment variable is not set or empty")]
    EnvMissing { source_name: String },
    #[error("secret {source_name}: cannot read file: {error}")]
    File {
        source_name: String,
        error: std::io::Error,
    },
    #[error("secret {source_name}: file is empty")]
    Empty { source_name: String },
}

impl SecretSource {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let SecretSource::File(p) = self {
            *p = base.join(&*p);
        }
    }

    /// Human-readable description: the variable name or path, never the value.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(var) => format!("env:{var}"),
            SecretSource::File(path) => format!("file:{}", path.display()),
        }
    }

    pub fn read(&self) -> Result<SecretString, SecretError> {
        let source_name = self.describe();
        let value = match self {
            SecretSource::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or(SecretError::EnvMissing { source_name })?,
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| SecretError::File {
                    source_name: source_name.clone(),
                    error,
                })?;
                let trimmed = text.trim_end_matches(['\r', '\n']).to_string();
                if trimmed.is_empty() {
                    return Err(SecretError::Empty { source_name });
                }
                trimmed
            }
        };
        Ok(SecretString::from(value))
    }

    /// For the embedded default only: creates the file with a random secret (mode 0600) if
    /// it does not exist yet. Returns true when a new secret was generated.
    pub fn generate_if_missing(&self) -> Result<bool, SecretError> {
        let SecretSource::File(path) = self else {
            return Ok(false);
        };
        if path.exists() {
            return Ok(false);
        }
        let io = |error| SecretError::File {
            source_name: self.describe(),
            error,
        };
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        let pin = SecretString::from(hex::encode(bytes));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(pin.expose_secret().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(true)
    }
}

/// Hand-written so that a secret pasted where its *source* belongs (`pin = "1234"`) is
/// refused with a fixed message: serde's default error would quote the value back into
/// stderr and the logs.
impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SourceVisitor)
    }
}

const NOT_A_SOURCE: &str =
    "must be a table { env = \"VAR\" } or { file = \"path\" } naming where the secret is, never the secret itself";

struct SourceVisitor;

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{ env = \"VAR\" } or { file = \"path\" }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
        let mut source = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = match key.as_str() {
                "env" => SecretSource::Env(map.next_value()?),
                "file" => SecretSource::File(map.next_value()?),
                _ => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{key}`: {NOT_A_SOURCE}"
                    )))
                }
            };
            if source.replace(value).is_some() {
                return Err(de::Error::custom("give exactly one of `env` or `file`"));
            }
        }
        source.ok_or_else(|| de::Error::custom(NOT_A_SOURCE))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretSource, E> {
        Err(E::custom(NOT_A_SOURCE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretSource, E> {
        Err(E::custom(NOT_A_SOURCE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretSource, E> {
        Err(E::custom(NOT_A_SOURCE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretSource, E> {
        Err(E::custom(NOT_A_SOURCE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretSource, E> {
        Err(E::custom(NOT_A_SOURCE))
    }
}

/// A new bearer secret: `prefix` (so leaked tokens are easy to spot in secret scanners)
/// then 256 random bits, base64url. Returns the token, to hand out once, and the SHA-256
/// of it, the only form anything keeps.
pub fn bearer_token(prefix: &str) -> (String, [u8; 32]) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = Sha256::digest(token.as_bytes()).into();
    (token, hash)
}
