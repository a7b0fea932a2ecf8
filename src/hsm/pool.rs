//! A logged-in token and a pool of PKCS#11 sessions shared by every signer.
//!
//! `Session` is `Send` but not `Sync`, so each call checks one out exclusively. A keeper
//! session stays open for the life of the pool because PKCS#11 login state ends when the
//! application's last session closes. A call that finds its session dead (closed, device
//! reset, login lost) reopens, logs in again and retries once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::context::{context_for, find_token};
use super::error::{session_lost, HsmError};
use crate::config::HsmConfig;

pub struct Hsm {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: SecretString,
    max_sessions: usize,
    idle: Mutex<PoolState>,
    available: Condvar,
    keeper: Mutex<Option<Session>>,
    /// Result of the last liveness probe (`/healthz` reads this, never the HSM).
    health: Mutex<Option<HealthProbe>>,
    probes: AtomicU64,
}

/// The outcome of one liveness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthProbe {
    pub at: Instant,
    /// `Err(kind)` with [`HsmError::kind`] when the probe failed.
    pub result: Result<(), &'static str>,
}

/// How often [`run_health_probe`] probes the HSM.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Probes `hsm` every `interval` until `stop` flips (blocking probes run on the blocking
/// pool), so health checks cost no HSM session per request.
pub async fn run_health_probe(
    hsm: std::sync::Arc<Hsm>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let h = hsm.clone();
        if tokio::task::spawn_blocking(move || h.probe())
            .await
            .is_err()
        {
            hsm.record_probe(Err("probe_panicked"));
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => break,
        }
    }
}

struct PoolState {
    idle: Vec<Session>,
    open: usize,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("token", &self.label)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

impl Hsm {
    /// Loads the module, finds the token by label and logs in with the configured PIN.
    pub fn open(cfg: &HsmConfig) -> Result<Hsm, HsmError> {
        let ctx = context_for(&cfg.module)?;
        let slot = find_token(&ctx, &cfg.token_label)?.ok_or_else(|| HsmError::TokenNotFound {
            label: cfg.token_label.clone(),
        })?;
        let pin = cfg.pin.read()?;
        let hsm = Hsm {
            ctx,
            slot,
            label: cfg.token_label.clone(),
            pin,
            max_sessions: cfg.sessions,
            idle: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            available: Condvar::new(),
            keeper: Mutex::new(None),
            health: Mutex::new(None),
            probes: AtomicU64::new(0),
        };
        hsm.login()?;
        Ok(hsm)
    }

    pub fn token_label(&self) -> &str {
        &self.label
    }

    /// (Re)opens the keeper session and logs the application in on it.
    fn login(&self) -> Result<(), HsmError> {
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(HsmError::from_ck)?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(HsmError::WrongPin {
                    label: self.label.clone(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(HsmError::PinLocked {
                    label: self.label.clone(),
                })
            }
            Err(e) => return Err(HsmError::from_ck(e)),
        }
        *self.keeper.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
        Ok(())
    }

    /// Liveness probe: C_GetSessionInfo on a pooled session. The result is recorded for
    /// [`Hsm::last_probe`]; `/healthz` reads that, the background [`run_health_probe`]
    /// calls this.
    pub fn probe(&self) -> Result<(), HsmError> {
        self.probes.fetch_add(1, Ordering::Relaxed);
        let result = self.with_session(|s| s.get_session_info().map(|_| ()));
        self.record_probe(result.as_ref().map(|_| ()).map_err(|e| e.kind()));
        result
    }

    fn record_probe(&self, result: Result<(), &'static str>) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Some(HealthProbe {
            at: Instant::now(),
            result,
        });
    }

    /// The last recorded probe, if any.
    pub fn last_probe(&self) -> Option<HealthProbe> {
        *self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Probes run since the HSM was opened (each takes a session).
    pub fn probe_count(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Runs `op` on a pooled, logged-in session. Retries once on a fresh session (after a
    /// new login) when the session was lost; other errors are returned as they are.
    pub fn with_session<R>(
        &self,
        op: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, HsmError> {
        self.with_session_raw(op).map_err(HsmError::from_ck_or)
    }

    /// As `with_session` but hands back the raw cryptoki error so callers can react to
    /// specific return values (stale object handles).
    pub(crate) fn with_session_raw<R>(
        &self,
        op: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, SessionError> {
        let session = self.checkout()?;
        match op(&session) {
            Err(e) if session_lost(&e) => {
                drop(session);
                self.release_slot();
                self.login().map_err(SessionError::Hsm)?;
                let fresh = self.checkout()?;
                let result = op(&fresh);
                self.checkin(fresh);
                result.map_err(SessionError::Ck)
            }
            result => {
                self.checkin(session);
                result.map_err(SessionError::Ck)
            }
        }
    }

    fn checkout(&self) -> Result<Session, SessionError> {
        // Login state ends with the application's last session: if the keeper is gone,
        // log in again before handing out a session that would otherwise see no keys.
        if self
            .keeper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            self.login().map_err(SessionError::Hsm)?;
        }
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = state.idle.pop() {
                return Ok(s);
            }
            if state.open < self.max_sessions {
                state.open += 1;
                drop(state);
                return self.ctx.open_rw_session(self.slot).map_err(|e| {
                    self.release_slot();
                    SessionError::Ck(e)
                });
            }
            state = self
                .available
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn checkin(&self, session: Session) {
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        state.idle.push(session);
        drop(state);
        self.available.notify_one();
    }

    fn release_slot(&self) {
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.available.notify_one();
    }

    /// Drops every pooled session (tests use this to simulate a lost session; the next
    /// call must recover by itself).
    pub fn close_all_sessions(&self) {
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
        drop(state);
        *self.keeper.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(crate) fn context(&self) -> &Pkcs11 {
        &self.ctx
    }
    pub(crate) fn slot(&self) -> Slot {
        self.slot
    }
}

/// Internal error of one pooled call: either already classified, or a raw cryptoki error
/// the caller may still inspect.
#[derive(Debug)]
pub(crate) enum SessionError {
    Hsm(HsmError),
    Ck(CkError),
}

impl HsmError {
    pub(crate) fn from_ck_or(e: SessionError) -> HsmError {
        match e {
            SessionError::Hsm(h) => h,
            SessionError::Ck(c) => HsmError::from_ck(c),
        }
    }
}
