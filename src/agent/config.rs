//! The agent's own configuration file: the workload has no appliance config, only the
//! appliance's URL and CA, where its enrollment token is, and where its files go.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::secret::SecretSource;

#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    #[error("cannot read agent config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("agent config: {field} {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// `agent.toml`. Relative paths are relative to the file's directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Appliance base URL, e.g. `https://credmint.internal:8443`.
    pub url: String,
    /// The CA bundle to trust when reaching the appliance (what `GET /v1/ca.pem` serves).
    pub ca: PathBuf,
    /// Where the one-time enrollment token is: `{ file = "..." }` or `{ env = "VAR" }`,
    /// never the token itself (a command-line argument would show in `ps`).
    pub enrollment_token: SecretSource,
    /// The agent's directory: its state (`state/`, mode 0700) and, unless `[files]` says
    /// otherwise, the delivered files and `status.json`.
    pub dir: PathBuf,
    /// Certificate lifetime to ask for; default: the integration's maximum.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    #[serde(default)]
    pub renew: RenewConfig,
    #[serde(default)]
    pub files: FilesConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    /// The SPIFFE Workload API on a Unix socket; absent: not served.
    #[serde(default)]
    pub workload_api: Option<WorkloadApiConfig>,
    /// Keep the workload's key in a PKCS#11 token of its own instead of a file.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11KeyConfig>,
}

/// `[pkcs11]`: the agent's key pair is generated inside this token (sensitive, never
/// extractable) and kept across renewals; CSRs and the mTLS handshakes are signed there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11KeyConfig {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    pub token_label: String,
    /// The user PIN: `{ file = "..." }` or `{ env = "VAR" }`.
    pub pin: SecretSource,
    /// Label of the key pair (created if absent).
    #[serde(default = "default_key_label")]
    pub key_label: String,
}

fn default_key_label() -> String {
    "credmint-agent".into()
}

impl Pkcs11KeyConfig {
    /// The token as the HSM layer opens it (one session: the agent signs rarely).
    pub fn hsm(&self) -> crate::config::HsmConfig {
        crate::config::HsmConfig {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin: self.pin.clone(),
            sessions: 1,
            softhsm: None,
        }
    }

    /// RFC 7512 URI of the key, for programs that use it from the token.
    pub fn uri(&self) -> String {
        format!(
            "pkcs11:token={};object={}",
            self.token_label, self.key_label
        )
    }
}

/// `[workload_api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadApiConfig {
    /// The socket; clients use `SPIFFE_ENDPOINT_SOCKET=unix://<socket>`.
    pub socket: PathBuf,
    /// Who may connect (with the owner and `socket_gid`): the first gate.
    #[serde(default = "default_socket_mode", deserialize_with = "octal")]
    pub socket_mode: u32,
    pub socket_gid: Option<u32>,
    /// When set, only callers with these uids (SO_PEERCRED) get the identity; the others
    /// get PermissionDenied. Unset: whoever can connect.
    pub allowed_uids: Option<Vec<u32>>,
    /// Scopes of the JWT-SVIDs minted for FetchJWTSVID (some of the integration's);
    /// empty: FetchJWTSVID is refused.
    #[serde(default)]
    pub jwt_scopes: Vec<String>,
    /// JWT-SVID lifetime; default: the integration's maximum.
    pub jwt_ttl_secs: Option<u64>,
}

fn default_socket_mode() -> u32 {
    0o660
}

/// When to renew, how to back off, how often to ask for the certificate's standing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenewConfig {
    /// Fraction of the lifetime after which to renew.
    pub at_fraction: f64,
    /// Random spread around that point, as a fraction of the lifetime (so a fleet
    /// enrolled together does not renew together).
    pub jitter_fraction: f64,
    /// First retry delay after a failed renewal, in milliseconds; doubles per failure.
    pub backoff_initial_ms: u64,
    /// Longest retry delay, in seconds.
    pub backoff_max_secs: u64,
    /// How often to ask `GET /v1/self` whether the certificate was revoked or the
    /// integration suspended, in seconds.
    pub poll_secs: u64,
}

impl Default for RenewConfig {
    fn default() -> Self {
        RenewConfig {
            at_fraction: 2.0 / 3.0,
            jitter_fraction: 0.05,
            backoff_initial_ms: 1000,
            backoff_max_secs: 60,
            poll_secs: 30,
        }
    }
}

/// The files a program reads. Written atomically (temp file, fsync, rename), key last
/// but one and certificate last, then the reload action runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// The CA bundle relying parties trust (`GET /v1/ca.pem`).
    pub bundle: PathBuf,
    /// The CRL (PEM), refreshed with every renewal; empty to skip it.
    pub crl: PathBuf,
    /// The agent's state as JSON (what it serves, why not, the next renewal).
    pub status: PathBuf,
    #[serde(deserialize_with = "octal")]
    pub cert_mode: u32,
    #[serde(deserialize_with = "octal")]
    pub key_mode: u32,
    /// Owner of the delivered files (numeric uid/gid; the agent must be allowed to chown).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
            bundle: "bundle.pem".into(),
            crl: "crl.pem".into(),
            status: "status.json".into(),
            cert_mode: 0o644,
            key_mode: 0o600,
            uid: None,
            gid: None,
        }
    }
}

/// What to do after new files are in place: signal a process and/or run a command.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// File holding the PID to signal (read at each reload: the program may restart).
    pub pid_file: Option<PathBuf>,
    /// Signal name: HUP (default), USR1, USR2, TERM, INT.
    pub signal: Option<String>,
    /// Command and arguments, run without a shell in the agent's `dir`; a non-zero exit
    /// is logged.
    pub command: Option<Vec<String>>,
}

/// `"0640"`: file modes are written in octal, as in chmod.
fn octal<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let s = String::deserialize(d)?;
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not a file mode (octal, e.g. \"0640\")"
        ))),
    }
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<AgentConfig, AgentConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: AgentConfig = toml::from_str(&text).map_err(|e| AgentConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve(base);
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) {
        self.ca = base.join(&self.ca);
        self.dir = base.join(&self.dir);
        self.enrollment_token.resolve(base);
        let dir = self.dir.clone();
        let f = &mut self.files;
        for p in [&mut f.cert, &mut f.key, &mut f.bundle, &mut f.status] {
            *p = dir.join(&*p);
        }
        if !f.crl.as_os_str().is_empty() {
            f.crl = dir.join(&f.crl);
        }
        if let Some(p) = &mut self.reload.pid_file {
            *p = base.join(&*p);
        }
        if let Some(api) = &mut self.workload_api {
            api.socket = base.join(&api.socket);
        }
        if let Some(token) = &mut self.pkcs11 {
            token.pin.resolve(base);
        }
    }

    fn validate(&self) -> Result<(), AgentConfigError> {
        let invalid = |field, message: &str| {
            Err(AgentConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if !(self.url.starts_with("https://")) {
            return invalid("url", "must be an https:// URL");
        }
        let r = &self.renew;
        if !(0.1..=0.95).contains(&r.at_fraction) {
            return invalid("renew.at_fraction", "must be between 0.1 and 0.95");
        }
        if !(0.0..=0.2).contains(&r.jitter_fraction) {
            return invalid("renew.jitter_fraction", "must be between 0 and 0.2");
        }
        if r.backoff_initial_ms == 0 || r.backoff_max_secs == 0 || r.poll_secs == 0 {
            return invalid(
                "renew",
                "backoff_initial_ms, backoff_max_secs and poll_secs must be at least 1",
            );
        }
        if let Some(s) = &self.reload.signal {
            if super::deliver::signal(s).is_none() {
                return invalid("reload.signal", "must be HUP, USR1, USR2, TERM or INT");
            }
        }
        if matches!(&self.reload.command, Some(c) if c.is_empty()) {
            return invalid("reload.command", "must name a program");
        }
        if self.workload_api.is_some() && self.pkcs11.is_some() {
            return invalid(
                "workload_api",
                "hands the private key to workloads (x509_svid_key), which a [pkcs11] key never leaves: use one or the other",
            );
        }
        if self.ttl_secs == Some(0) {
            return invalid("ttl_secs", "must be at least 1");
        }
        Ok(())
    }

    /// The agent's private state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<AgentConfig, AgentConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, text).unwrap();
        AgentConfig::load(&path)
    }

    const MINIMAL: &str = r#"
url = "https://localhost:8443"
ca = "ca.pem"
enrollment_token = { file = "token" }
dir = "out"
"#;

    #[test]
    fn minimal_config_gets_documented_defaults_and_paths_under_dir() {
        let cfg = load(MINIMAL).unwrap();
        assert!((cfg.renew.at_fraction - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(cfg.files.key_mode, 0o600);
        assert_eq!(cfg.files.cert_mode, 0o644);
        assert!(cfg.files.cert.ends_with("out/cert.pem"));
        assert!(cfg.files.crl.ends_with("out/crl.pem"));
        assert!(cfg.state_dir().ends_with("out/state"));
    }

    /// The example the README points to stays loadable.
    #[test]
    fn the_shipped_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/agent.toml");
        let cfg = AgentConfig::load(&path).unwrap();
        assert_eq!(cfg.files.key_mode, 0o600);
        assert_eq!(cfg.renew.poll_secs, 30);
        assert_eq!(
            cfg.enrollment_token.describe(),
            "env:CREDMINT_ENROLLMENT_TOKEN"
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            ("[renew]\nat_fraction = 1.5\n", "renew.at_fraction"),
            ("[reload]\nsignal = \"KILLALL\"\n", "reload.signal"),
            ("[files]\nkey_mode = \"0999\"\n", "not a file mode"),
            ("ttl_secs = 0\n", "ttl_secs"),
        ];
        for (extra, needle) in cases {
            let err = load(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
        let both = "[workload_api]\nsocket = \"s\"\n[pkcs11]\nmodule = \"m\"\ntoken_label = \"t\"\npin = { env = \"P\" }\n";
        let err = load(&format!("{MINIMAL}{both}")).unwrap_err().to_string();
        assert!(
            err.contains("workload_api") && err.contains("pkcs11"),
            "{err}"
        );
        let err = load(&MINIMAL.replace("https://", "http://"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("url"), "{err}");
    }

    #[test]
    fn a_token_pasted_inline_is_refused_without_echoing_it() {
        let text = MINIMAL.replace("{ file = \"token\" }", "\"cmt_secretvalue\"");
        let err = load(&text).unwrap_err().to_string();
        assert!(!err.contains("cmt_secretvalue"), "{err}");
        assert!(err.contains("never the secret itself"), "{err}");
    }
}
