//! Typed firmware configuration (`firmware-config/credmint.toml`).
//!
//! Loading is strict: unknown keys and invalid values stop start-up with a message naming
//! the key, because a typo in an HSM or TTL setting must never silently fall back to a
//! default. Relative paths are resolved against the config file's directory so the
//! embedded default works from any working directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::secret::SecretSource;

/// Errors found while reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config value `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Signature algorithm of a key held in the HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256: accepted by every relying system, and ~3x faster than
    /// Ed25519 on SoftHSM.
    EcdsaP256,
    /// Ed25519 (PureEdDSA). Required for the ledger key (C2SP signed notes).
    Ed25519,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory holding the ledger, certificates, the TLS key and (embedded default) the
    /// SoftHSM token store. Created on `init`.
    pub data_dir: PathBuf,
    pub hsm: HsmConfig,
    pub keys: KeysConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// tlog-tiles publication (`[tiles]`, optional; off unless `dir` is set).
    #[serde(default)]
    pub tiles: TilesConfig,
    pub server: ServerConfig,
    pub identity: IdentityConfig,
    pub ttl: TtlConfig,
    /// Review-by limits and warnings (`[governance]`, optional; see `governance.rs`).
    #[serde(default)]
    pub governance: crate::governance::GovernanceConfig,
    /// Anomaly signal thresholds (`[signals]`, optional; see `signals.rs`).
    #[serde(default)]
    pub signals: crate::signals::SignalsConfig,
    /// The ACME server (`[acme]`, optional; README "ACME").
    #[serde(default)]
    pub acme: AcmeConfig,
    /// Witnesses every checkpoint is submitted to (`[[witness]]`, optional; README
    /// "Witness cosignatures").
    #[serde(default, rename = "witness")]
    pub witnesses: Vec<crate::witness::WitnessConfig>,
    /// SHA-256 of the config file bytes; recorded in the genesis event.
    #[serde(skip)]
    pub digest: [u8; 32],
}

/// How to reach the PKCS#11 module and token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 shared library.
    pub module: PathBuf,
    /// Label of the token holding credmint's keys; the slot is found by this label.
    pub token_label: String,
    /// Source of the user PIN (environment variable or file). Never the PIN itself.
    pub pin: SecretSource,
    /// Number of PKCS#11 sessions kept for signing (default 4).
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// Present only for the embedded SoftHSM2 default.
    #[serde(default)]
    pub softhsm: Option<SoftHsmConfig>,
}

/// Embedded SoftHSM2: credmint owns the token directory and may create the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftHsmConfig {
    /// Token store directory (relative to `data_dir`).
    pub token_dir: PathBuf,
    /// softhsm2.conf template with `@TOKEN_DIR@` (relative to the config file).
    pub conf_template: PathBuf,
    /// Security-officer PIN source, used only to create the token.
    pub so_pin: SecretSource,
}

/// Labels and algorithms of the three keys credmint keeps in the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    pub ca: KeyConfig,
    pub token: KeyConfig,
    pub ledger: KeyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// CKA_LABEL of the key pair in the token.
    pub label: String,
    pub algorithm: Algorithm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// redb file (relative to `data_dir`; default `ledger.redb`).
    #[serde(default = "default_ledger_file")]
    pub file: PathBuf,
    /// How often a new checkpoint is signed when the ledger has grown (default 5 s).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
}

/// C2SP tlog-tiles publication (README "Scaling reads: tiles", FORMAT.md §15).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TilesConfig {
    /// Directory the appliance writes `checkpoint`, `tile/<L>/<N>[.p/<W>]` and
    /// `tile/entries/<N>[.p/<W>]` into after each checkpoint (relative to `data_dir`).
    /// Absent (the default): nothing is published, because the operator chooses where
    /// public files go and who serves them. Point a web server or `rclone sync` at it.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            file: default_ledger_file(),
            checkpoint_interval_secs: default_checkpoint_interval(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTPS listen address.
    pub listen: SocketAddr,
    /// DNS names and IP addresses put in the server certificate.
    pub names: Vec<String>,
    /// Largest request body accepted (default 64 KiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Base URL relying parties use (put in certificates' OCSP and CRL URLs and as the JWT
    /// `iss`). Default: `https://<first name>:<listening port>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Optional plain-HTTP listener answering only OCSP (`/ocsp`) and the CRLs (`/crl`,
    /// `/crl/rN`), everything else 404: relying parties fetch status without first trusting
    /// this CA's TLS (RFC 5019, CA/Browser Forum convention). Same connection caps and
    /// timeouts as `listen` (one shared budget). Default: none.
    #[serde(default)]
    pub status_listen: Option<SocketAddr>,
    /// Base URL put in certificates' OCSP (AIA) and CRL distribution point URLs, `http://`
    /// or `https://`. Default: `http://<first name>:<status_listen port>` when
    /// `status_listen` is set, else `public_url`.
    #[serde(default)]
    pub status_url: Option<String>,
    /// Submissions the ledger writer queues before answering 503 (default 8192).
    #[serde(default = "default_queue")]
    pub ledger_queue: usize,
    /// Open connections the listener holds at most (default 4096); one more is closed at
    /// once, before its TLS handshake. Lowered at start to the open-file limit minus 256.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections one peer holds at most (default 512): an IPv4 address or an IPv6
    /// /64. Over it, closed at once like `max_connections`.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// From TCP accept to a finished TLS handshake (default 10 s).
    #[serde(default = "default_handshake_timeout")]
    pub tls_handshake_timeout_secs: u64,
    /// HTTP/1.1: a request head (request line and headers) must be complete this long
    /// after the server starts waiting for it: after the TLS handshake, or after the
    /// previous response, so it also ends idle keep-alive connections. Also bounds the wait
    /// for the first request on HTTP/2 (default 10 s).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// A connection with no request in flight for this long is closed, HTTP/1.1 or
    /// HTTP/2 (default 60 s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Largest request head: the HTTP/1.1 read buffer and the HTTP/2 header list size
    /// (default 65536). Larger heads get 431 (HTTP/1.1) or a stream reset (HTTP/2).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// HTTP/2 streams (requests) in flight per connection (default 64).
    #[serde(default = "default_h2_streams")]
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: ping the client after this long without frames from it (default 20 s)...
    #[serde(default = "default_h2_ping_interval")]
    pub http2_keep_alive_interval_secs: u64,
    /// ...and close the connection when the ping is not answered this long (default 10 s).
    #[serde(default = "default_h2_ping_timeout")]
    pub http2_keep_alive_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// SPIFFE trust domain: lowercase DNS-like name.
    pub trust_domain: String,
    pub ca_common_name: String,
    pub ca_validity_days: u32,
    pub server_cert_validity_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlConfig {
    /// Upper bound on any routine credential's TTL.
    pub routine_max_secs: u64,
    /// Upper bound on any privileged credential's TTL.
    pub privileged_max_secs: u64,
    /// How long after its expiry a workload certificate may still renew itself (0: not
    /// at all). An agent that outlived an appliance outage then recovers on its own; the
    /// price is that a stolen key outlives its certificate by as much.
    #[serde(default)]
    pub renew_after_expiry_secs: u64,
}

/// The ACME (RFC 8555) server at `/acme/` (README "ACME").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// CKA_LABEL of the token's HMAC key every External Account Binding key is derived
    /// from (generated by `init` when missing).
    #[serde(default = "default_eab_key_label")]
    pub eab_key_label: String,
    /// How long a new EAB key binds an account unless the operator asks for less.
    #[serde(default = "default_eab_ttl")]
    pub eab_ttl_secs: u64,
    /// How long an order and its authorizations stay usable.
    #[serde(default = "default_order_lifetime")]
    pub order_lifetime_secs: u64,
    /// Port http-01 validation connects to. RFC 8555 §8.3 says 80; a lab or a test whose
    /// client cannot bind 80 changes it. Nothing else about the validation changes.
    #[serde(default = "default_http01_port")]
    pub http01_port: u16,
    /// Most orders and authorizations kept in memory at once; beyond it newOrder answers
    /// 429 rateLimited with Retry-After.
    #[serde(default = "default_max_orders")]
    pub max_orders: usize,
    /// Resolvers dns-01 validation asks (`ip` or `ip:port`), typically the authoritative
    /// server of the internal zone; empty means the system's (`/etc/resolv.conf`).
    #[serde(default)]
    pub dns_resolvers: Vec<String>,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            eab_key_label: default_eab_key_label(),
            eab_ttl_secs: default_eab_ttl(),
            order_lifetime_secs: default_order_lifetime(),
            http01_port: default_http01_port(),
            max_orders: default_max_orders(),
            dns_resolvers: Vec::new(),
        }
    }
}

fn default_eab_key_label() -> String {
    "credmint-acme-eab".into()
}
fn default_eab_ttl() -> u64 {
    7 * 86_400
}
fn default_order_lifetime() -> u64 {
    3_600
}
fn default_http01_port() -> u16 {
    80
}
fn default_max_orders() -> usize {
    100_000
}

fn default_sessions() -> usize {
    4
}
fn default_ledger_file() -> PathBuf {
    PathBuf::from("ledger.redb")
}
fn default_checkpoint_interval() -> u64 {
    5
}
fn default_queue() -> usize {
    8192
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_max_connections() -> usize {
    4096
}
fn default_max_connections_per_ip() -> usize {
    512
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_header_bytes() -> usize {
    64 * 1024
}
fn default_h2_streams() -> u32 {
    64
}
fn default_h2_ping_interval() -> u64 {
    20
}
fn default_h2_ping_timeout() -> u64 {
    10
}

/// Removes `.` and `name/..` components without touching the file system, so messages
/// show `/srv/credmint/data` rather than `/srv/credmint/firmware-config/../data`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The parser's message plus a line number, without the source snippet toml would print:
/// a mistaken config line may hold a secret (a PIN pasted where a source belongs).
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

/// Environment variables that override config values (see `Config::apply_env_overrides`).
pub const ENV_LISTEN: &str = "CREDMINT_LISTEN";
pub const ENV_NAMES: &str = "CREDMINT_NAMES";
pub const ENV_PUBLIC_URL: &str = "CREDMINT_PUBLIC_URL";

impl Config {
    /// Reads, parses, resolves relative paths and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| ConfigError::Parse {
            path: path.to_owned(),
            message: "not UTF-8".into(),
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(&text, &e),
        })?;
        let overrides = config.apply_env_overrides()?;
        // The digest (recorded in genesis) covers the effective configuration: the file,
        // then each override that replaced one of its values.
        let mut digest = Sha256::new().chain_update(&bytes);
        for (name, value) in &overrides {
            digest.update(format!("\n{name}={value}").as_bytes());
        }
        config.digest = digest.finalize().into();
        let base = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        config.resolve_paths(&base);
        config.validate()?;
        Ok(config)
    }

    /// Values a container or unit sets per deployment without editing the file:
    /// `CREDMINT_LISTEN` (server.listen), `CREDMINT_NAMES` (server.names, comma-separated),
    /// `CREDMINT_PUBLIC_URL` (server.public_url). Returns the overrides applied, in order.
    fn apply_env_overrides(&mut self) -> Result<Vec<(&'static str, String)>, ConfigError> {
        let mut applied = Vec::new();
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = var(ENV_LISTEN) {
            self.server.listen = v.parse().map_err(|_| ConfigError::Invalid {
                key: ENV_LISTEN,
                message: format!("{v:?} is not an address:port"),
            })?;
            applied.push((ENV_LISTEN, v));
        }
        if let Some(v) = var(ENV_NAMES) {
            self.server.names = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            applied.push((ENV_NAMES, v));
        }
        if let Some(v) = var(ENV_PUBLIC_URL) {
            self.server.public_url = Some(v.clone());
            applied.push((ENV_PUBLIC_URL, v));
        }
        Ok(applied)
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.data_dir = normalize(&base.join(&self.data_dir));
        let data = self.data_dir.clone();
        self.hsm.pin.resolve(&data);
        if let Some(soft) = &mut self.hsm.softhsm {
            soft.token_dir = data.join(&soft.token_dir);
            soft.conf_template = base.join(&soft.conf_template);
            soft.so_pin.resolve(&data);
        }
        self.ledger.file = data.join(&self.ledger.file);
        if let Some(dir) = &mut self.tiles.dir {
            *dir = normalize(&data.join(&*dir));
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.hsm.token_label.is_empty() || self.hsm.token_label.len() > 32 {
            return invalid("hsm.token_label", "must be 1 to 32 bytes (PKCS#11 limit)");
        }
        if self.hsm.sessions == 0 || self.hsm.sessions > 64 {
            return invalid("hsm.sessions", "must be between 1 and 64");
        }
        if let Err(message) = crate::witness::parse(&self.witnesses) {
            return Err(ConfigError::Invalid {
                key: "witness",
                message,
            });
        }
        if self.keys.ledger.algorithm != Algorithm::Ed25519 {
            return invalid(
                "keys.ledger.algorithm",
                "must be ed25519 (C2SP signed notes)",
            );
        }
        let labels = [
            ("keys.ca.label", &self.keys.ca.label),
            ("keys.token.label", &self.keys.token.label),
            ("keys.ledger.label", &self.keys.ledger.label),
        ];
        for (key, label) in labels {
            if label.is_empty() {
                return invalid(key, "must not be empty");
            }
        }
        if labels[0].1 == labels[1].1 || labels[0].1 == labels[2].1 || labels[1].1 == labels[2].1 {
            return invalid("keys", "the three key labels must differ");
        }
        if self.ledger.checkpoint_interval_secs == 0 {
            return invalid("ledger.checkpoint_interval_secs", "must be at least 1");
        }
        if let Some(dir) = &self.tiles.dir {
            if dir == &self.data_dir || self.data_dir.starts_with(dir) {
                return invalid(
                    "tiles.dir",
                    "must not be the data directory or contain it (its files are public)",
                );
            }
        }
        if self.server.names.is_empty() {
            return invalid("server.names", "needs at least one DNS name or IP address");
        }
        if let Some(url) = &self.server.public_url {
            if !url.starts_with("https://") {
                return invalid("server.public_url", "must start with https://");
            }
        }
        if let Some(url) = &self.server.status_url {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return invalid("server.status_url", "must start with http:// or https://");
            }
        }
        if let Some(status) = self.server.status_listen {
            if status.port() != 0 && status == self.server.listen {
                return invalid("server.status_listen", "must differ from server.listen");
            }
        }
        if self.server.ledger_queue == 0 {
            return invalid("server.ledger_queue", "must be at least 1");
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        self.validate_edge()?;
        let td = &self.identity.trust_domain;
        let td_ok = !td.is_empty()
            && td
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !td_ok {
            return invalid(
                "identity.trust_domain",
                "must be a lowercase DNS-like name (a-z, 0-9, '.', '-')",
            );
        }
        if self.identity.ca_validity_days == 0 {
            return invalid("identity.ca_validity_days", "must be at least 1");
        }
        if self.identity.server_cert_validity_days == 0
            || self.identity.server_cert_validity_days > self.identity.ca_validity_days
        {
            return invalid(
                "identity.server_cert_validity_days",
                "must be at least 1 and at most ca_validity_days",
            );
        }
        if self.ttl.routine_max_secs == 0 || self.ttl.routine_max_secs > 86_400 {
            return invalid("ttl.routine_max_secs", "must be between 1 and 86400");
        }
        if self.ttl.renew_after_expiry_secs > 86_400 {
            return invalid("ttl.renew_after_expiry_secs", "must be at most 86400");
        }
        if self.ttl.privileged_max_secs == 0
            || self.ttl.privileged_max_secs > self.ttl.routine_max_secs
        {
            return invalid(
                "ttl.privileged_max_secs",
                "must be at least 1 and at most ttl.routine_max_secs",
            );
        }
        self.governance.validate()?;
        self.signals.validate()?;
        Ok(())
    }

    /// The `[server]` connection limits (`src/edge/`).
    fn validate_edge(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let check = |key: &'static str, ok: bool, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    message: message.to_string(),
                })
            }
        };
        check(
            "server.max_connections",
            (1..=1_000_000).contains(&s.max_connections),
            "must be between 1 and 1000000",
        )?;
        check(
            "server.max_connections_per_ip",
            (1..=s.max_connections).contains(&s.max_connections_per_ip),
            "must be at least 1 and at most server.max_connections",
        )?;
        for (key, secs) in [
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
            ),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            (
                "server.http2_keep_alive_interval_secs",
                s.http2_keep_alive_interval_secs,
            ),
            (
                "server.http2_keep_alive_timeout_secs",
                s.http2_keep_alive_timeout_secs,
            ),
        ] {
            check(
                key,
                (1..=3600).contains(&secs),
                "must be between 1 and 3600 seconds",
            )?;
        }
        check(
            "server.max_header_bytes",
            (8192..=1024 * 1024).contains(&s.max_header_bytes),
            "must be between 8192 and 1048576",
        )?;
        check(
            "server.http2_max_concurrent_streams",
            (1..=1000).contains(&s.http2_max_concurrent_streams),
            "must be between 1 and 1000",
        )
    }

    /// Checkpoint origin: binds the log's identity to its trust domain (C2SP: the key name
    /// should equal the origin).
    pub fn ledger_origin(&self) -> String {
        format!("{}/credmint-ledger", self.identity.trust_domain)
    }

    /// The effective public base URL for a listener on `port`, without trailing slash.
    pub fn public_url(&self, port: u16) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("https://{}:{port}", self.server.names[0]),
        }
    }

    /// The base URL of OCSP and CRLs in issued certificates, for an HTTPS listener on
    /// `port` and the plain status listener on `status_port` (if any); no trailing slash.
    pub fn status_url(&self, port: u16, status_port: Option<u16>) -> String {
        match (&self.server.status_url, status_port) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(p)) => format!("http://{}:{p}", self.server.names[0]),
            (None, None) => self.public_url(port),
        }
    }

    /// Certificate of the first init operator (the CLI's default identity).
    pub fn operator_cert_path(&self) -> PathBuf {
        self.operator_paths(&self.governance.init_operators[0]).0
    }
    pub fn operator_key_path(&self) -> PathBuf {
        self.operator_paths(&self.governance.init_operators[0]).1
    }
    /// (certificate chain, private key) files of init operator `name`.
    pub fn operator_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.data_dir.join(format!("operator-{name}.pem")),
            self.data_dir.join(format!("operator-{name}-key.pem")),
        )
    }

    /// Intermediate CA mode: the CA certificate request waiting for `credmint ca import`.
    pub fn ca_request_path(&self) -> PathBuf {
        self.data_dir.join("ca-request.csr")
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.data_dir.join("ca.pem")
    }
    /// Recovery copy of the embedded SoftHSM token's object files (`hsm::recovery`).
    pub fn token_recovery_dir(&self) -> PathBuf {
        self.data_dir.join("token-recovery")
    }
    /// The newest witness-cosigned checkpoint, kept across restarts (`witness`).
    pub fn cosigned_checkpoint_path(&self) -> PathBuf {
        self.data_dir.join("checkpoint.cosigned")
    }

    pub fn server_cert_path(&self) -> PathBuf {
        self.data_dir.join("server.pem")
    }
    pub fn server_key_path(&self) -> PathBuf {
        self.data_dir.join("server-key.pem")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("c.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn default_text() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/credmint.toml"),
        )
        .unwrap()
    }

    #[test]
    fn embedded_default_loads() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&write(dir.path(), &default_text())).unwrap();
        assert_eq!(cfg.keys.ledger.algorithm, Algorithm::Ed25519);
        assert!(cfg.ledger.file.starts_with(&cfg.data_dir));
    }

    #[test]
    fn edge_limits_default_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&write(dir.path(), &default_text())).unwrap();
        assert_eq!(
            (
                cfg.server.max_connections,
                cfg.server.max_connections_per_ip
            ),
            (4096, 512)
        );
        for (line, key) in [
            (
                "max_connections_per_ip = 5000",
                "server.max_connections_per_ip",
            ),
            ("idle_timeout_secs = 0", "server.idle_timeout_secs"),
            ("max_header_bytes = 100", "server.max_header_bytes"),
            (
                "http2_max_concurrent_streams = 0",
                "server.http2_max_concurrent_streams",
            ),
        ] {
            let text = default_text().replace(
                "max_body_bytes = 65536",
                &format!("max_body_bytes = 65536\n{line}"),
            );
            let err = Config::load(&write(dir.path(), &text)).unwrap_err();
            assert!(err.to_string().contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn status_url_follows_the_status_listener_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::load(&write(dir.path(), &default_text())).unwrap();
        assert_eq!(cfg.status_url(8443, None), "https://localhost:8443");
        assert_eq!(cfg.status_url(8443, Some(8080)), "http://localhost:8080");
        let text = default_text().replace(
            "max_body_bytes = 65536",
            "max_body_bytes = 65536\nstatus_url = \"http://ca.example/\"",
        );
        let cfg = Config::load(&write(dir.path(), &text)).unwrap();
        assert_eq!(cfg.status_url(8443, Some(8080)), "http://ca.example");
        for (line, key) in [
            ("status_url = \"ftp://x\"", "server.status_url"),
            ("status_listen = \"127.0.0.1:8443\"", "server.status_listen"),
        ] {
            let text = default_text().replace(
                "max_body_bytes = 65536",
                &format!("max_body_bytes = 65536\n{line}"),
            );
            let err = Config::load(&write(dir.path(), &text)).unwrap_err();
            assert!(err.to_string().contains(key), "{line}: {err}");
        }
    }

    #[test]
    fn witnesses_parse_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let signer = credmint_ledger::DalekSigner::from_seed([5; 32]);
        let key = credmint_ledger::cosignature::WitnessKey::new(
            "w.example/1",
            credmint_ledger::Signer::public_key(&signer),
        )
        .unwrap();
        let vkey = key.to_key_string();
        let table =
            |vkey: &str, url: &str| format!("\n[[witness]]\nvkey = \"{vkey}\"\nurl = \"{url}\"\n");
        let text = default_text() + &table(&vkey, "https://w.example/1");
        let cfg = Config::load(&write(dir.path(), &text)).unwrap();
        let parsed = crate::witness::parse(&cfg.witnesses).unwrap();
        assert_eq!(parsed[0].key, key);
        let log_key = credmint_ledger::note::verifier_key_string("w.example/1", &key.public_key);
        for (text, why) in [
            (table(&log_key, "https://w.example/1"), "0x04"),
            (table(&vkey, "w.example/1"), "http(s) URL"),
            (
                table(&vkey, "https://a") + &table(&vkey, "https://b"),
                "listed twice",
            ),
        ] {
            let err = Config::load(&write(dir.path(), &(default_text() + &text))).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("`witness`") && msg.contains(why), "{msg}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = default_text().replace("sessions = 4", "sessions = 4\nsesions = 2");
        let err = Config::load(&write(dir.path(), &text)).unwrap_err();
        assert!(err.to_string().contains("sesions"), "{err}");
    }

    #[test]
    fn invalid_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let text = default_text().replace(
            "ledger = { label = \"credmint-ledger\", algorithm = \"ed25519\" }",
            "ledger = { label = \"credmint-ledger\", algorithm = \"ecdsa-p256\" }",
        );
        let err = Config::load(&write(dir.path(), &text)).unwrap_err();
        assert!(err.to_string().contains("keys.ledger.algorithm"), "{err}");
        let text = default_text().replace("privileged_max_secs = 900", "privileged_max_secs = 0");
        let err = Config::load(&write(dir.path(), &text)).unwrap_err();
        assert!(err.to_string().contains("ttl.privileged_max_secs"), "{err}");
    }

    #[test]
    fn pin_literal_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let text = default_text().replace(
            "pin = { file = \"hsm-user.pin\" }",
            "pin = { value = \"1234\" }",
        );
        let err = Config::load(&write(dir.path(), &text)).unwrap_err();
        assert!(err.to_string().contains("value"), "{err}");
        assert!(!err.to_string().contains("1234"), "{err}");
        for literal in ["pin = \"123456\"", "pin = 123456"] {
            let text = default_text().replace("pin = { file = \"hsm-user.pin\" }", literal);
            let err = Config::load(&write(dir.path(), &text))
                .unwrap_err()
                .to_string();
            assert!(err.contains("never the secret itself"), "{err}");
            assert!(!err.contains("123456"), "PIN echoed: {err}");
        }
    }
}
