//! Where secrets (HSM PINs) come from, and the redacting type that carries them.
//!
//! The config names a *source* (environment variable or file), never the value, so the
//! config file can be shared, versioned and hashed into the genesis event.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Where a secret is read from.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
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
