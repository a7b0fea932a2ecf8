//! `credmint init`: provisions token, keys, CA certificate and ledger genesis.
//!
//! Idempotent by construction: every step first looks for what it would create and only
//! creates what is missing, so a second run changes nothing and reports each step as
//! already present. An existing ledger whose genesis names other keys is refused rather
//! than forked.

use std::path::Path;
use std::sync::Arc;

use credmint_ledger::event::{Event, Genesis};
use credmint_ledger::{Ledger, NewEntry};
use time::OffsetDateTime;

use crate::ca::{build_root, load_root, write_private, CaError, RootCa};
use crate::config::Config;
use crate::hsm::keys::ensure_key_pair;
use crate::hsm::recovery;
use crate::hsm::token::{ensure_token, prepare_softhsm, TokenDir};
use crate::hsm::{context_for, Hsm, HsmError, KeyOutcome};
use crate::issuance::{pem_chain, sign_leaf};
use crate::keyset::KeySet;
use crate::operator::operator_leaf;
use crate::secret::SecretError;

/// Actor recorded for events written by `init` itself.
pub const INIT_ACTOR: &str = "system:init";
/// Actor of the genesis record of a ledger made by `credmint init --benchmark`: the mark
/// `credmint bench seed` requires before it writes synthetic events (`bench::seed`).
pub const BENCH_GENESIS_ACTOR: &str = "system:init-benchmark";

/// What `init` creates.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions<'a> {
    /// Mark a new ledger's genesis as a benchmark ledger (a throwaway appliance).
    pub benchmark: bool,
    /// Intermediate CA mode: write a CSR for the CA key here instead of self-signing a
    /// root; the ledger is created by `credmint ca import` ([`import_ca`]).
    pub ca_csr: Option<&'a Path>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("ledger: {0}")]
    Ledger(#[from] credmint_ledger::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    SoftHsm(#[from] crate::hsm::token::PrepareError),
    #[error(transparent)]
    TokenRecovery(#[from] crate::hsm::recovery::RecoveryError),
    #[error(transparent)]
    KeyConfig(crate::keycheck::KeyCheckError),
    #[error(transparent)]
    CaImport(#[from] crate::ca::import::ImportError),
    #[error("operator certificate: {0}")]
    Operator(String),
    #[error("data directory {path} is writable by {who} (mode {mode:04o}): files in it may have been planted by another user (PIN files, token, ledger); refusing to use it. Give the appliance a directory of its own, writable only by its user (init creates a missing one with mode 0700)")]
    UnsafeDataDir {
        path: std::path::PathBuf,
        mode: u32,
        who: &'static str,
    },
    #[error("existing ledger {path} does not belong to these keys: {reason}; refusing to fork it")]
    ForeignLedger {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// One line of the init report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub created: bool,
}

#[derive(Debug, Default)]
pub struct InitReport {
    pub steps: Vec<Step>,
}

impl InitReport {
    fn push(&mut self, what: impl Into<String>, created: bool) {
        self.steps.push(Step {
            what: what.into(),
            created,
        });
    }
    /// True when this run created nothing.
    pub fn unchanged(&self) -> bool {
        self.steps.iter().all(|s| !s.created)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes sure the data directory exists and is private ([`private_data_dir`]), then points
/// the process at the embedded SoftHSM store when configured, and repairs object files a
/// crash cut short from the recovery copy (before the module reads them); a no-op for other
/// modules. Only `init` passes [`TokenDir::Create`]; every other verb refuses a missing
/// token directory (exit 4) instead of silently recreating it empty. Returns the data
/// directory's previous mode when it had to be tightened.
pub fn prepare_environment(cfg: &Config, token_dir: TokenDir) -> Result<Option<u32>, InitError> {
    let tightened = private_data_dir(&cfg.data_dir)?;
    if let Some(soft) = &cfg.hsm.softhsm {
        prepare_softhsm(soft, &cfg.data_dir, token_dir)?;
        if let Some(root) = recovery::configured_token_root() {
            for r in recovery::restore_damaged(&cfg.token_recovery_dir(), &root)? {
                tracing::warn!(
                    file = %r.file.display(),
                    damaged_len = r.damaged_len,
                    "SoftHSM object file was cut short (crash during a token write); restored from the recovery copy"
                );
            }
        }
    }
    Ok(tightened)
}

/// After the token has proven itself (logged in, keys found): makes SoftHSM's files
/// durable and refreshes the recovery copy. Failure is logged, not fatal: the live token
/// works, and the previous copy (if any) is still whole.
pub fn refresh_token_copy(cfg: &Config) {
    if cfg.hsm.softhsm.is_none() {
        return;
    }
    let Some(root) = recovery::configured_token_root() else {
        return;
    };
    match recovery::refresh(&cfg.token_recovery_dir(), &root, &cfg.hsm.token_label) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "token recovery copy refreshed"),
        Err(e) => tracing::error!(error = %e, "token recovery copy not refreshed"),
    }
}

/// The data directory holds the PIN files, the SoftHSM token and the ledger. A missing one
/// is created with mode 0700. An existing one that others may only read or enter (0755,
/// 0750, ...) is tightened to 0700 before anything secret is written into it; the previous
/// mode is returned. One that the group or others may *write* (0775, 0777, 1777 like
/// `/tmp`) is refused: chmod cannot undo what another user may already have put there (a
/// PIN file with a PIN they know, a token, a symlink in place of the ledger), and changing
/// a shared directory such as `/tmp` would break its other users.
fn private_data_dir(dir: &Path) -> Result<Option<u32>, InitError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(io(dir))?
            .permissions()
            .mode()
            & 0o7777;
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (_, true) => Some("everyone"),
            (true, false) => Some("its group"),
            (false, false) => None,
        };
        if let Some(who) = who {
            return Err(InitError::UnsafeDataDir {
                path: dir.to_owned(),
                mode,
                who,
            });
        }
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(dir))?;
            tracing::warn!(
                path = %dir.display(),
                from = format!("{mode:04o}"),
                "data directory tightened to 0700"
            );
            return Ok(Some(mode));
        }
    }
    Ok(None)
}

pub fn run(cfg: &Config) -> Result<InitReport, InitError> {
    run_with(cfg, InitOptions::default())
}

/// As [`run`], with options.
pub fn run_with(cfg: &Config, options: InitOptions<'_>) -> Result<InitReport, InitError> {
    let mut report = InitReport::default();
    if let Some(mode) = prepare_environment(cfg, TokenDir::Create)? {
        report.push(
            format!(
                "mode 0700 of data directory {} (was {mode:04o})",
                cfg.data_dir.display()
            ),
            true,
        );
    }
    if cfg.ledger.file.exists() {
        // An existing ledger fixes the keys: check them before creating anything (token,
        // PIN files or key pairs), so a fresh token never gets keys that could only fork it.
        check_existing_ledger(cfg)?;
    }
    if let Some(soft) = &cfg.hsm.softhsm {
        let ctx = context_for(&cfg.hsm.module)?;
        let exists = crate::hsm::token_exists(&ctx, &cfg.hsm.token_label)?;
        if !exists {
            // PIN files are only ever generated together with a new token: regenerating
            // them for an existing token would lock the operator out.
            soft.so_pin.generate_if_missing()?;
            cfg.hsm.pin.generate_if_missing()?;
        }
        let created = ensure_token(&cfg.hsm, &soft.so_pin.read()?, &cfg.hsm.pin.read()?)?;
        report.push(format!("token {:?}", cfg.hsm.token_label), created);
    }
    let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
    for (role, key) in [
        ("CA", &cfg.keys.ca),
        ("token", &cfg.keys.token),
        ("ledger", &cfg.keys.ledger),
    ] {
        let outcome = ensure_key_pair(&hsm, &key.label, key.algorithm)?;
        report.push(
            format!("{role} key {:?} ({})", key.label, key.algorithm.name()),
            outcome == KeyOutcome::Generated,
        );
    }
    let eab = crate::hsm::mac::ensure_mac_key(&hsm, &cfg.acme.eab_key_label)?;
    report.push(
        format!("ACME EAB HMAC key {:?}", cfg.acme.eab_key_label),
        eab == KeyOutcome::Generated,
    );
    let keys = KeySet::load(hsm, cfg)?;
    let now = OffsetDateTime::now_utc();
    let ca_path = cfg.ca_cert_path();
    let ca = if ca_path.exists() {
        report.push(format!("CA certificate {}", ca_path.display()), false);
        // After a CA rotation the genesis root is kept as ca-r0.pem (ca.pem is a bundle
        // of the roots in use); genesis is checked against it.
        let genesis_root = cfg.data_dir.join("ca-r0.pem");
        let path = if genesis_root.exists() {
            genesis_root
        } else {
            ca_path
        };
        load_root(&path, &keys.ca)?
    } else if let Some(csr_path) = options.ca_csr {
        // Intermediate CA mode: nothing is signed under the CA key until its certificate
        // is imported; the ledger starts then, with the imported certificate in genesis.
        let csr = crate::ca::import::ca_csr_pem(&keys.ca, &cfg.identity.ca_common_name)?;
        for path in [csr_path, &cfg.ca_request_path()] {
            std::fs::write(path, &csr).map_err(io(path))?;
        }
        report.push(
            format!("CA certificate request {}", csr_path.display()),
            true,
        );
        refresh_token_copy(cfg);
        return Ok(report);
    } else if cfg.ca_request_path().exists() {
        return Err(crate::ca::import::ImportError::Pending {
            csr: cfg.ca_request_path().display().to_string(),
        }
        .into());
    } else {
        let root = build_root(
            &keys.ca,
            &cfg.identity.ca_common_name,
            cfg.identity.ca_validity_days,
            now,
        )?;
        std::fs::write(&ca_path, &root.pem).map_err(io(&ca_path))?;
        report.push(format!("CA certificate {}", ca_path.display()), true);
        root
    };
    let created = ensure_ledger(cfg, &keys, &ca, now, options)?;
    report.push(format!("ledger {}", cfg.ledger.file.display()), created);
    let created = ensure_init_operators(cfg, &keys, &ca, now)?;
    for name in &cfg.governance.init_operators {
        let path = cfg.operator_paths(name).0;
        report.push(format!("operator certificate {}", path.display()), created);
    }
    refresh_token_copy(cfg);
    Ok(report)
}

/// With an existing ledger: its token must exist and hold every key in force, and the
/// configuration must name them. Creates nothing.
fn check_existing_ledger(cfg: &Config) -> Result<(), InitError> {
    let path = &cfg.ledger.file;
    let foreign = |reason: String| InitError::ForeignLedger {
        path: path.clone(),
        reason,
    };
    let ledger = Ledger::open(path)?;
    let ctx = context_for(&cfg.hsm.module)?;
    if !crate::hsm::token_exists(&ctx, &cfg.hsm.token_label)? {
        return Err(foreign(format!(
            "token {:?} does not exist, so it cannot hold the keys this ledger was made with (nothing was created; restore the token or move the ledger away)",
            cfg.hsm.token_label
        )));
    }
    let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
    match crate::keycheck::check(cfg, &hsm, &ledger) {
        Ok(()) => Ok(()),
        Err(crate::keycheck::KeyCheckError::Hsm(
            e @ (HsmError::KeyNotFound { .. } | HsmError::KeyMismatch { .. }),
        )) => Err(foreign(format!(
            "{e} (token {:?}; nothing was created)",
            cfg.hsm.token_label
        ))),
        Err(crate::keycheck::KeyCheckError::Hsm(e)) => Err(e.into()),
        Err(e) => Err(InitError::KeyConfig(e)),
    }
}

/// Issues the init operators' certificates (key and chain in the data directory, key
/// mode 0600) and records them right after the genesis, once: the auditor accepts
/// `system:init` operators only as the run of records directly after the genesis
/// (FORMAT.md §13.5), so they are created only while the ledger holds nothing else.
fn ensure_init_operators(
    cfg: &Config,
    keys: &KeySet,
    ca: &RootCa,
    now: OffsetDateTime,
) -> Result<bool, InitError> {
    let ledger = Ledger::open(&cfg.ledger.file)?;
    if ledger.size() > 1 {
        let missing: Vec<String> = cfg
            .governance
            .init_operators
            .iter()
            .map(|n| cfg.operator_paths(n).0)
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            tracing::warn!(?missing, "init operator files missing; operators are added through the running appliance (request + approval)");
        }
        return Ok(false);
    }
    let mut entries = Vec::new();
    let mut files = Vec::new();
    let timestamp_ms = unix_ms(now).max(ledger.head_timestamp_ms());
    for name in &cfg.governance.init_operators {
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::from)?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&key);
        let leaf = operator_leaf(
            name,
            "credmint init",
            &cfg.identity.trust_domain,
            &cfg.status_url(
                cfg.server.listen.port(),
                cfg.server.status_listen.map(|a| a.port()),
            ),
            ledger.origin(),
            &spki,
            now,
        );
        let der = sign_leaf(&leaf.spec, &spki, ca, &keys.ca)
            .map_err(|e| InitError::Operator(e.to_string()))?;
        entries.push(NewEntry {
            timestamp_ms,
            actor: INIT_ACTOR.into(),
            event: leaf.event,
        });
        files.push((name, key.serialize_pem(), pem_chain(&der, ca)));
    }
    ledger
        .append_batch_with(entries, crate::registry::apply)
        .map_err(|e| InitError::Operator(e.to_string()))?;
    for (name, key_pem, chain) in files {
        let (cert_path, key_path) = cfg.operator_paths(name);
        write_private(&key_path, key_pem.as_bytes())?;
        std::fs::write(&cert_path, chain).map_err(io(&cert_path))?;
    }
    ledger.sign_checkpoint(&keys.ledger)?;
    Ok(true)
}

/// Creates the ledger with its genesis event and first checkpoint, or checks that an
/// existing ledger was made for these keys and this CA.
fn ensure_ledger(
    cfg: &Config,
    keys: &KeySet,
    ca: &RootCa,
    now: OffsetDateTime,
    options: InitOptions,
) -> Result<bool, InitError> {
    let path = &cfg.ledger.file;
    if path.exists() {
        let ledger = Ledger::open(path)?;
        check_genesis(&ledger, keys, ca).map_err(|reason| InitError::ForeignLedger {
            path: path.clone(),
            reason,
        })?;
        return Ok(false);
    }
    let genesis = Genesis {
        origin: cfg.ledger_origin(),
        keys: keys.key_infos(),
        config_digest: cfg.digest,
        ca_certificate_der: ca.der.clone(),
    };
    let ledger = Ledger::create(
        path,
        NewEntry {
            timestamp_ms: unix_ms(now),
            actor: if options.benchmark {
                BENCH_GENESIS_ACTOR
            } else {
                INIT_ACTOR
            }
            .into(),
            event: Event::Genesis(genesis),
        },
    )?;
    ledger.sign_checkpoint(&keys.ledger)?;
    Ok(true)
}

fn check_genesis(ledger: &Ledger, keys: &KeySet, ca: &RootCa) -> Result<(), String> {
    let record = ledger
        .record(0)
        .map_err(|e| e.to_string())?
        .ok_or("ledger has no genesis record")?;
    let Event::Genesis(genesis) = record.event else {
        return Err("record 0 is not a genesis event".into());
    };
    let wanted = keys.key_infos();
    for key in &wanted {
        let found = genesis.keys.iter().find(|k| k.role == key.role);
        if found.map(|k| &k.spki_der) != Some(&key.spki_der) {
            return Err(format!(
                "genesis {:?} key differs from token key {:?}",
                key.role, key.label
            ));
        }
    }
    if genesis.ca_certificate_der != ca.der {
        return Err("genesis CA certificate differs from ca.pem".into());
    }
    Ok(())
}

/// `credmint ca import`: checks the certificate the enterprise root signed for the CA key
/// (`crate::ca::import::check_import`), installs it as `ca.pem` (issuers in
/// `ca-chain.pem`), then finishes init under it (genesis with this certificate, the init
/// operators) and records the import with its issuer chain (`CaImported`).
pub fn import_ca(cfg: &Config, cert_pem: &[u8], chain_pem: &[u8]) -> Result<InitReport, InitError> {
    use crate::ca::import::{check_import, read_certificates, ImportError};
    let cert = read_certificates("certificate", cert_pem)?.remove(0);
    let chain = read_certificates("--chain", chain_pem)?;
    let now = OffsetDateTime::now_utc();
    prepare_environment(cfg, TokenDir::MustExist)?;
    let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
    if cfg.ledger.file.exists() {
        if !cfg.ca_request_path().exists() {
            return Err(ImportError::AlreadyImported.into());
        }
        crate::rotation::offline::import(cfg, &hsm, cert, chain, now)?;
        let _ = std::fs::remove_file(cfg.ca_request_path());
        let mut report = InitReport::default();
        report.push("CA rotation and import recorded in the ledger", true);
        return Ok(report);
    }
    let keys = KeySet::load(hsm, cfg)?;
    check_import(&cert, &chain, &keys.ca, now.unix_timestamp())?;
    let ca_path = cfg.ca_cert_path();
    let pem = crate::issuance::pem_encode("CERTIFICATE", &cert);
    std::fs::write(&ca_path, &pem).map_err(io(&ca_path))?;
    let chain_path = cfg.data_dir.join("ca-chain.pem");
    let issuers: String = chain
        .iter()
        .map(|d| crate::issuance::pem_encode("CERTIFICATE", d))
        .collect();
    std::fs::write(&chain_path, issuers).map_err(io(&chain_path))?;
    let mut report = run_with(cfg, InitOptions::default())?;
    let ledger = Ledger::open(&cfg.ledger.file)?;
    let ca_key = keys
        .key_infos()
        .into_iter()
        .find(|k| k.role == credmint_ledger::event::KeyRole::Ca)
        .ok_or_else(|| InitError::Operator("no CA key".into()))?;
    ledger
        .append_batch_with(
            vec![NewEntry {
                timestamp_ms: unix_ms(now).max(ledger.head_timestamp_ms()),
                actor: crate::rotation::offline::CA_IMPORT_ACTOR.into(),
                event: Event::CaImported(credmint_ledger::event::CaImported {
                    key: ca_key,
                    ca_certificate_der: cert,
                    issuer_chain_der: chain,
                }),
            }],
            crate::registry::apply,
        )
        .map_err(|e| InitError::Operator(e.to_string()))?;
    ledger.sign_checkpoint(&keys.ledger)?;
    let request = cfg.ca_request_path();
    let _ = std::fs::remove_file(&request);
    report.push(
        format!("CA import recorded in {}", cfg.ledger.file.display()),
        true,
    );
    Ok(report)
}

pub fn unix_ms(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}
