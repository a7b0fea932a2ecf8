//! `credmint agent`: the workload side. It enrolls once with a one-time token (a key of
//! its own, generated here), renews over mTLS before expiry with jitter and capped
//! backoff, keeps serving the current certificate through an outage until it truly
//! expires, delivers files atomically and runs a reload action, polls its own standing
//! so a revocation or a suspension takes effect within `poll_secs`, and in job mode runs
//! a command with a credential that is revoked when the command exits.
//!
//! It is a verb of the `credmint` binary rather than a binary of its own: one artifact
//! to ship and verify, sharing the wire types and the HTTPS client with the appliance;
//! the agent never loads a PKCS#11 module (that happens only in `serve`, `init` and the
//! offline key verbs).

pub mod appliance;
pub mod config;
pub mod credential;
pub mod deliver;
pub mod job;
pub mod jwt;
pub mod report;
pub mod schedule;
pub mod workload_api;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::client::ClientError;
use crate::wire::{Lifecycle, StatusName};
use appliance::Appliance;
use config::AgentConfig;
use credential::{Held, KeySource, StateDir};
use deliver::Delivery;
use report::{Phase, Reporter};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::AgentConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("enrollment token: {0}")]
    Token(#[from] crate::secret::SecretError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("unexpected answer: {0}")]
    Answer(String),
    #[error("key generation: {0}")]
    Key(String),
    #[error("reload action: {0}")]
    Reload(String),
    #[error("{0}")]
    NoCredential(String),
    #[error("Workload API: {0}")]
    Api(String),
    #[error("agent key token: {0}")]
    Hsm(#[from] crate::hsm::HsmError),
}

impl AgentError {
    pub fn io(path: &Path, source: std::io::Error) -> AgentError {
        AgentError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// The appliance's HTTP status, when it answered with a refusal.
    pub fn refused(&self) -> Option<u16> {
        match self {
            AgentError::Client(ClientError::Refused { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why the agent serves nothing, when it is on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// The certificate can no longer renew (revoked other than `superseded`, expired past
    /// the appliance's grace, unknown): only a new enrollment token helps.
    Dead(String),
    /// The integration is suspended or decommissioned: the credential is kept, and served
    /// again if the integration is resumed while it is still valid.
    Integration(String),
}

impl Stop {
    fn reason(&self) -> &str {
        match self {
            Stop::Dead(r) | Stop::Integration(r) => r,
        }
    }
}

/// Everything the agent serves at one moment: the credential and what relying parties
/// trust (CA bundle, CRL, token keys), swapped as one on every change.
pub struct Identity {
    pub held: Held,
    /// A file key as PKCS#8 DER (the Workload API's `x509_svid_key`); empty for a token
    /// key (the config refuses the Workload API with one).
    pub key_der: Zeroizing<Vec<u8>>,
    pub bundle_pem: Vec<u8>,
    /// The bundle's certificates, DER, concatenated.
    pub bundle_der: Vec<u8>,
    pub crl_der: Option<Vec<u8>>,
    /// `GET /.well-known/jwks.json` (empty when it could not be fetched).
    pub jwks: Vec<u8>,
}

impl Identity {
    /// `spiffe://<trust domain>` of the held certificate.
    pub fn trust_domain(&self) -> String {
        let id = self.held.spiffe_id.as_deref().unwrap_or_default();
        let rest = id.strip_prefix("spiffe://").unwrap_or(id);
        format!("spiffe://{}", rest.split('/').next().unwrap_or_default())
    }

    fn same_trust(&self, other: &Trust) -> bool {
        self.bundle_pem == other.bundle_pem
            && (other.crl_der.is_none() || self.crl_der == other.crl_der)
            && (other.jwks.is_empty() || self.jwks == other.jwks)
    }
}

/// What relying parties trust, fetched from the appliance (public routes).
struct Trust {
    bundle_pem: Vec<u8>,
    crl_der: Option<Vec<u8>>,
    jwks: Vec<u8>,
}

/// The credential the agent currently serves, for in-process consumers (job mode, the
/// Workload API): `None` while it serves nothing.
pub type Serving = watch::Receiver<Option<Arc<Identity>>>;

pub struct Agent {
    cfg: AgentConfig,
    appliance: Arc<Appliance>,
    delivery: Delivery,
    state: StateDir,
    keys: KeySource,
    reporter: Reporter,
    held: Option<Held>,
    stopped: Option<Stop>,
    /// Consecutive failures of the current attempt (renewal or enrollment).
    failures: u32,
    next_renewal_ms: u64,
    next_poll_ms: u64,
    next_enroll_ms: u64,
    last_error: Option<String>,
    obtained: u64,
    /// Job mode: each certificate replaced by a renewal is revoked at once.
    revoke_replaced: bool,
    serving: watch::Sender<Option<Arc<Identity>>>,
}

impl Agent {
    pub fn new(cfg: AgentConfig) -> Result<Agent, AgentError> {
        let ca_pem = std::fs::read(&cfg.ca).map_err(|e| AgentError::io(&cfg.ca, e))?;
        let appliance = Arc::new(Appliance::new(&cfg.url, ca_pem, cfg.ttl_secs)?);
        let state = StateDir::open(&cfg.state_dir())?;
        let keys = match &cfg.pkcs11 {
            Some(token) => KeySource::token(token)?,
            None => KeySource::Files,
        };
        let held = state.load(&keys);
        let token_env = match &cfg.enrollment_token {
            crate::secret::SecretSource::Env(var) => Some(var.clone()),
            crate::secret::SecretSource::File(_) => None,
        };
        let delivery = Delivery::new(cfg.files.clone(), cfg.reload.clone(), &cfg.dir, token_env);
        let reporter = Reporter::new(cfg.files.status.clone());
        Ok(Agent {
            appliance,
            delivery,
            state,
            keys,
            reporter,
            held,
            stopped: None,
            failures: 0,
            next_renewal_ms: 0,
            next_poll_ms: 0,
            next_enroll_ms: 0,
            last_error: None,
            obtained: 0,
            revoke_replaced: false,
            serving: watch::channel(None).0,
            cfg,
        })
    }

    /// Follows what the agent serves.
    pub fn serving(&self) -> Serving {
        self.serving.subscribe()
    }

    pub fn files(&self) -> &config::FilesConfig {
        self.delivery.files()
    }

    pub fn appliance(&self) -> Arc<Appliance> {
        self.appliance.clone()
    }

    /// Serves the Workload API (when configured) until `shutdown`, beside the agent. The
    /// socket is bound before this returns, so a job's command finds it, and a socket
    /// another agent serves is an error here, not a log line.
    pub fn spawn_workload_api(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, AgentError> {
        let Some(cfg) = self.cfg.workload_api.clone() else {
            return Ok(None);
        };
        let listener = workload_api::bind(&cfg)?;
        let serving = self.serving();
        let appliance = self.appliance();
        Ok(Some(tokio::spawn(async move {
            if let Err(e) = workload_api::serve(listener, cfg, serving, appliance, shutdown).await {
                tracing::error!(error = %e, "Workload API stopped");
            }
        })))
    }

    /// Gets a credential now or fails: the one a previous run left if the appliance
    /// still calls it good, else one for the enrollment token.
    pub async fn obtain(&mut self) -> Result<(), AgentError> {
        self.resume().await;
        if self.serving.borrow().is_some() {
            return Ok(());
        }
        self.held = None;
        if self.enroll().await? {
            Ok(())
        } else {
            Err(AgentError::NoCredential(format!(
                "no valid credential, and the enrollment token at {} was already used: give the agent a new one",
                self.cfg.enrollment_token.describe()
            )))
        }
    }

    /// Serves the credential a previous run left if it is still good, or if the
    /// appliance cannot be asked (an outage is no reason to stop serving a valid
    /// certificate). Anything else is left to the first poll and renewal.
    async fn resume(&mut self) {
        let Some(held) = self.held.clone().filter(|h| !h.expired(now_ms())) else {
            return;
        };
        let serve = match self.appliance.standing(&held).await {
            Ok(s) => {
                s.certificate.status == StatusName::Good
                    && s.integration.status == Lifecycle::Active
            }
            Err(e) => e.refused().is_none_or(|status| status >= 500),
        };
        if serve {
            if let Err(e) = self.install(held, false).await {
                self.note_failure(&e);
            }
        }
    }

    /// Serves until `shutdown` turns true: renews, polls, re-enrolls when given a new
    /// token. Never returns an error: every failure is reported and retried.
    pub async fn run(&mut self, mut shutdown: watch::Receiver<bool>) {
        if self.held.is_some() && self.serving.borrow().is_none() {
            self.resume().await;
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = now_ms();
            let wake = self.next_wake(now);
            let sleep = Duration::from_millis(wake.saturating_sub(now));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => return,
            }
            self.step().await;
        }
    }

    fn needs_token(&self) -> bool {
        self.held.is_none() || matches!(self.stopped, Some(Stop::Dead(_)))
    }

    fn next_wake(&self, now: u64) -> u64 {
        if self.needs_token() {
            return self.next_enroll_ms;
        }
        let mut wake = self.next_poll_ms;
        if self.stopped.is_none() {
            wake = wake.min(self.next_renewal_ms);
            if let Some(h) = &self.held {
                if now < h.not_after_ms {
                    wake = wake.min(h.not_after_ms);
                }
            }
        }
        wake
    }

    async fn step(&mut self) {
        let now = now_ms();
        if self.needs_token() {
            if now >= self.next_enroll_ms {
                self.try_enroll().await;
            }
            return;
        }
        if now >= self.next_poll_ms {
            self.next_poll_ms = now + self.cfg.renew.poll_secs * 1000;
            self.poll().await;
        }
        if self.stopped.is_none() && now_ms() >= self.next_renewal_ms {
            self.renew().await;
        }
        self.redeliver().await;
        self.report();
    }

    /// One enrollment attempt in the daemon loop.
    async fn try_enroll(&mut self) {
        let poll = self.cfg.renew.poll_secs * 1000;
        match self.enroll().await {
            Ok(true) => {}
            Ok(false) => {
                self.next_enroll_ms = now_ms() + poll;
                let waiting = format!(
                    "waiting for a new enrollment token at {}",
                    self.cfg.enrollment_token.describe()
                );
                self.last_error = Some(match &self.stopped {
                    Some(stop) => format!("{}; {waiting}", stop.reason()),
                    None => waiting,
                });
                self.report();
            }
            Err(e) => {
                let transient = e.refused().is_none_or(|s| s >= 500);
                self.note_failure(&e);
                self.next_enroll_ms = now_ms() + if transient { self.backoff() } else { poll };
                self.report();
            }
        }
    }

    /// Enrolls with the token if it is one not presented before. `Ok(false)`: no new
    /// token. A token the appliance refused is not presented again.
    async fn enroll(&mut self) -> Result<bool, AgentError> {
        let token = self.cfg.enrollment_token.read()?;
        let hash = hex::encode(Sha256::digest(
            secrecy::ExposeSecret::expose_secret(&token).as_bytes(),
        ));
        let mut memo = self.state.memo();
        if memo.spent_token_sha256.as_deref() == Some(hash.as_str()) {
            return Ok(false);
        }
        let result = self
            .appliance
            .enroll(&token, self.keys.next()?, now_ms())
            .await;
        drop(token);
        if result.is_ok()
            || result
                .as_ref()
                .err()
                .and_then(AgentError::refused)
                .is_some_and(|s| s < 500)
        {
            memo.spent_token_sha256 = Some(hash);
            self.state.save_memo(&memo)?;
        }
        let held = result?;
        tracing::info!(serial = %held.serial, "enrolled");
        self.install(held, true).await?;
        Ok(true)
    }

    /// Makes `held` the served credential: state, files, reload, schedule.
    async fn install(&mut self, held: Held, fresh: bool) -> Result<(), AgentError> {
        let now = now_ms();
        if fresh {
            self.state.store(&held)?;
            self.obtained += 1;
            self.failures = 0;
        }
        // From here the credential is the agent's, delivered or not: a failure below is
        // retried by the next step (`redeliver`), never by spending another token or
        // minting another certificate.
        let replaced = self.held.replace(held.clone());
        if self.revoke_replaced && fresh {
            if let Some(old) = replaced.filter(|o| o.serial != held.serial) {
                if let Err(e) = self.appliance.revoke(&old, "cessationOfOperation").await {
                    tracing::warn!(serial = %old.serial, error = %e, "cannot revoke the replaced certificate");
                }
            }
        }
        let jitter = rand::random::<f64>() * 2.0 - 1.0;
        self.next_renewal_ms = schedule::renew_at(
            held.obtained_ms.min(now),
            held.not_after_ms,
            &self.cfg.renew,
            jitter,
        );
        let trust = self.fetch_trust(&held).await?;
        let identity = identity(held.clone(), trust)?;
        self.delivery
            .deliver(&held, &identity.bundle_pem, identity.crl_der.as_deref())?;
        if let Err(e) = self.delivery.reload().await {
            tracing::warn!(error = %e, "reload action failed");
        }
        self.stopped = None;
        self.last_error = None;
        self.serving.send_replace(Some(Arc::new(identity)));
        self.report();
        Ok(())
    }

    /// A held, valid credential that is not being served without a reason (its delivery
    /// failed): deliver it again. An expired one is taken off the Workload API instead.
    async fn redeliver(&mut self) {
        let now = now_ms();
        let Some(held) = self.held.clone() else {
            return;
        };
        if held.expired(now) {
            if self.serving.borrow().is_some() {
                tracing::warn!(serial = %held.serial, "certificate expired; the Workload API serves nothing until a renewal succeeds");
                self.serving.send_replace(None);
            }
            return;
        }
        if self.stopped.is_none() && self.serving.borrow().is_none() {
            if let Err(e) = self.install(held, false).await {
                self.note_failure(&e);
            }
        }
    }

    /// The CA bundle (the configured CA file if the appliance cannot be asked), the CRL
    /// of `held`'s issuer and the token keys; the last two are optional.
    async fn fetch_trust(&self, held: &Held) -> Result<Trust, AgentError> {
        let bundle_pem = match self.appliance.bundle().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the CA bundle; delivering the configured CA file");
                std::fs::read(&self.cfg.ca).map_err(|e| AgentError::io(&self.cfg.ca, e))?
            }
        };
        let crl_der = match self.appliance.crl(held).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the CRL; keeping the previous one");
                self.serving
                    .borrow()
                    .as_ref()
                    .and_then(|i| i.crl_der.clone())
            }
        };
        let jwks = match self.appliance.jwks().await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the JWKS");
                self.serving
                    .borrow()
                    .as_ref()
                    .map(|i| i.jwks.clone())
                    .unwrap_or_default()
            }
        };
        Ok(Trust {
            bundle_pem,
            crl_der,
            jwks,
        })
    }

    /// Between renewals: a new CA bundle (CA rotation), CRL or token key reaches the
    /// files and the Workload API streams at the next poll.
    async fn refresh_trust(&mut self) {
        let Some(current) = self.serving.borrow().clone() else {
            return;
        };
        let Ok(trust) = self.fetch_trust(&current.held).await else {
            return;
        };
        if current.same_trust(&trust) {
            return;
        }
        let bundle_changed = current.bundle_pem != trust.bundle_pem;
        let updated = match identity(current.held.clone(), trust) {
            Ok(i) => i,
            Err(e) => return self.note_failure(&e),
        };
        if let Err(e) = self.delivery.deliver(
            &updated.held,
            &updated.bundle_pem,
            updated.crl_der.as_deref(),
        ) {
            return self.note_failure(&e);
        }
        if bundle_changed {
            tracing::info!("CA bundle changed; files updated");
            if let Err(e) = self.delivery.reload().await {
                tracing::warn!(error = %e, "reload action failed");
            }
        }
        self.serving.send_replace(Some(Arc::new(updated)));
    }

    async fn renew(&mut self) {
        let Some(held) = self.held.clone() else {
            return;
        };
        let next = match self.keys.next() {
            Ok(next) => next,
            Err(e) => {
                self.note_failure(&e);
                self.next_renewal_ms = now_ms() + self.backoff();
                return;
            }
        };
        match self.appliance.renew(&held, next, now_ms()).await {
            Ok(new) => {
                tracing::info!(old = %held.serial, new = %new.serial, "renewed");
                if let Err(e) = self.install(new, true).await {
                    self.note_failure(&e);
                    self.next_renewal_ms = now_ms() + self.backoff();
                }
            }
            Err(e) if e.refused() == Some(401) => {
                self.stop(Stop::Dead(format!("renewal refused: {e}"))).await;
            }
            Err(e) => {
                self.note_failure(&e);
                self.next_renewal_ms = now_ms() + self.backoff();
            }
        }
    }

    /// Asks the appliance how the held certificate and its integration stand.
    async fn poll(&mut self) {
        let Some(held) = self.held.clone() else {
            return;
        };
        let standing = match self.appliance.standing(&held).await {
            Ok(s) => s,
            Err(e) if e.refused() == Some(401) => {
                return self
                    .stop(Stop::Dead(format!(
                        "the appliance no longer knows this certificate: {e}"
                    )))
                    .await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "standing poll failed");
                return;
            }
        };
        let integration = &standing.integration;
        let cert = &standing.certificate;
        if integration.status != Lifecycle::Active {
            let why = format!(
                "integration {} is {:?}",
                integration.name, integration.status
            )
            .to_lowercase();
            return self.stop(Stop::Integration(why)).await;
        }
        if cert.status == StatusName::Revoked {
            let reason = cert.reason.clone().unwrap_or_default();
            if cert.renewable {
                tracing::warn!(serial = %held.serial, %reason, "certificate revoked; renewing now");
                self.stopped = None;
                self.next_renewal_ms = 0;
            } else {
                self.stop(Stop::Dead(format!(
                    "certificate {} revoked ({reason})",
                    held.serial
                )))
                .await;
            }
            return;
        }
        if matches!(self.stopped, Some(Stop::Integration(_))) && held.expired(now_ms()) {
            // Resumed after the certificate expired: renew if the appliance's grace still
            // allows it (a 401 then stops for good), without serving the expired one.
            self.stopped = None;
            self.next_renewal_ms = 0;
            return;
        }
        if matches!(self.stopped, Some(Stop::Integration(_))) && !held.expired(now_ms()) {
            tracing::info!(integration = %integration.name, "integration active again; serving");
            if let Err(e) = self.install(held, false).await {
                self.note_failure(&e);
            }
            return;
        }
        if self.stopped.is_none() {
            self.refresh_trust().await;
        }
    }

    /// Serves nothing from now on, and says why.
    async fn stop(&mut self, stop: Stop) {
        if self.stopped.as_ref() == Some(&stop) {
            return;
        }
        tracing::error!(reason = stop.reason(), "agent stops serving");
        if let Err(e) = self.delivery.withdraw() {
            tracing::warn!(error = %e, "cannot remove the delivered files");
        }
        self.serving.send_replace(None);
        if matches!(stop, Stop::Dead(_)) {
            // Never to be served again, not even by a restart during an outage.
            if let Err(e) = self.state.forget() {
                tracing::warn!(error = %e, "cannot remove the dead credential from state/");
            }
        }
        self.stopped = Some(stop);
        self.next_enroll_ms = now_ms();
        self.report();
    }

    fn note_failure(&mut self, e: &AgentError) {
        self.failures = self.failures.saturating_add(1);
        tracing::warn!(error = %e, failures = self.failures, "agent attempt failed");
        self.last_error = Some(e.to_string());
    }

    fn backoff(&self) -> u64 {
        let spread = 0.5 + rand::random::<f64>() * 0.5;
        schedule::backoff_ms(self.failures.max(1), &self.cfg.renew, spread)
    }

    fn report(&mut self) {
        let now = now_ms();
        let (phase, reason) = match (&self.held, &self.stopped) {
            (_, Some(stop)) => (
                Phase::Stopped,
                Some(
                    self.last_error
                        .clone()
                        .unwrap_or_else(|| stop.reason().to_string()),
                ),
            ),
            (None, None) => (Phase::Enrolling, self.last_error.clone()),
            (Some(h), None) if h.expired(now) => (Phase::Expired, self.last_error.clone()),
            (Some(_), None) => (Phase::Serving, self.last_error.clone()),
        };
        let next =
            (phase == Phase::Serving || phase == Phase::Expired).then_some(self.next_renewal_ms);
        self.reporter
            .set(phase, self.held.as_ref(), reason, next, self.obtained, now);
    }
}

/// The served identity for `held`, with `trust` and the key in DER.
fn identity(held: Held, trust: Trust) -> Result<Identity, AgentError> {
    let key_der = match held.key.pem() {
        Some(pem) => pem::parse(pem.as_bytes())
            .map_err(|e| AgentError::Key(e.to_string()))?
            .into_contents(),
        None => Vec::new(),
    };
    let bundle_der = pem::parse_many(&trust.bundle_pem)
        .map_err(|e| AgentError::Answer(format!("CA bundle: {e}")))?
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .flat_map(|p| p.contents().to_vec())
        .collect();
    Ok(Identity {
        key_der: Zeroizing::new(key_der),
        held,
        bundle_pem: trust.bundle_pem,
        bundle_der,
        crl_der: trust.crl_der,
        jwks: trust.jwks,
    })
}

/// `credmint agent`: serve until SIGTERM or SIGINT.
pub async fn serve(cfg: AgentConfig) -> Result<(), AgentError> {
    let mut agent = Agent::new(cfg)?;
    let (tx, rx) = watch::channel(false);
    let api = agent.spawn_workload_api(rx.clone())?;
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    agent.run(rx).await;
    if let Some(api) = api {
        let _ = api.await;
    }
    tracing::info!("agent stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
