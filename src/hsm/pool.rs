//! A logged-in token and a pool of PKCS#11 sessions shared by every signer.
//!
//! `Session` is `Send` but not `Sync`, so each call checks one out exclusively. A keeper
//! session stays open for the life of the pool because PKCS#11 login state ends when the
//! application's last session closes. A call that finds its session dead (closed, device
//! reset, login lost) reopens, logs in again and retries once.
//!
//! Every call runs under a module [`Lease`]. When the module was re-initialised since the
//! pool's sessions were opened, they are forgotten (never closed: their handle numbers now
//! belong to new sessions), the token is found again by label, the keeper logs in again and
//! the handle epoch moves on, so every `HsmKey` finds its object again before signing.
//! Faults (token, key or login unusable) are reported to the supervisor (`supervisor.rs`),
//! which answers later calls with `HsmError::Unavailable` until it has reconnected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectClass;
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::context::{find_token, module_for, Lease, Module};
use super::error::{handle_stale, is_fault, session_lost, HsmError};
use super::keys::{find_in, public_in, PublicKey};
use super::supervisor::Link;
use crate::config::HsmConfig;
use crate::metrics::HsmMetrics;

pub struct Hsm {
    module: Arc<Module>,
    label: String,
    pin: SecretString,
    max_sessions: usize,
    pool: Mutex<PoolState>,
    available: Condvar,
    /// Moves on whenever object handles may have changed (module re-initialised, token
    /// reconnected): a handle found under an older epoch must be found again.
    handles_epoch: AtomicU64,
    /// Keys loaded through `HsmKey::load`: the probe checks they are still in the token,
    /// a reconnection that they still hold the same public keys.
    watched: Mutex<Vec<PublicKeyOf>>,
    pub(super) link: Link,
    probes: AtomicU64,
    metrics: HsmMetrics,
}

/// A key the appliance signs with: its label and the public key it must still have.
#[derive(Clone)]
struct PublicKeyOf {
    label: String,
    public: PublicKey,
}

struct PoolState {
    slot: Slot,
    /// Module generation the sessions below were opened in.
    generation: u64,
    idle: Vec<Session>,
    open: usize,
    keeper: Option<Session>,
}

impl std::fmt::Debug for Hsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm")
            .field("token", &self.label)
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// Internal error of one pooled call: either already classified, or a raw cryptoki error
/// the caller may still inspect.
#[derive(Debug)]
pub(crate) enum SessionError {
    Hsm(HsmError),
    Ck(CkError),
    /// The caller's object handle predates the current handle epoch: find it again.
    StaleHandle,
}

impl SessionError {
    /// The [`HsmError::kind`] this failure is counted under; `None` for a stale object
    /// handle, which the caller finds again and retries (not a failure of the HSM).
    fn kind(&self) -> Option<&'static str> {
        match self {
            SessionError::Hsm(e) => Some(e.kind()),
            SessionError::Ck(e) if handle_stale(e) => None,
            SessionError::Ck(e) => Some(HsmError::from_ck_ref(e).kind()),
            SessionError::StaleHandle => None,
        }
    }
}

impl HsmError {
    pub(crate) fn from_ck_or(e: SessionError) -> HsmError {
        match e {
            SessionError::Hsm(h) => h,
            SessionError::Ck(c) => HsmError::from_ck(c),
            SessionError::StaleHandle => HsmError::Pkcs11 {
                function: "handle".into(),
                rv: "object handle from before a reconnection".into(),
            },
        }
    }
}

impl Hsm {
    /// Loads the module, finds the token by label and logs in with the configured PIN.
    pub fn open(cfg: &HsmConfig) -> Result<Hsm, HsmError> {
        let module = module_for(&cfg.module)?;
        let (slot, generation) = {
            let lease = module.lease();
            let slot = find_token(lease.ctx(), &cfg.token_label)?.ok_or_else(|| {
                HsmError::TokenNotFound {
                    label: cfg.token_label.clone(),
                }
            })?;
            (slot, lease.generation())
        };
        let pin = cfg.pin.read()?;
        let hsm = Hsm {
            module,
            label: cfg.token_label.clone(),
            pin,
            max_sessions: cfg.sessions,
            pool: Mutex::new(PoolState {
                slot,
                generation,
                idle: Vec::new(),
                open: 0,
                keeper: None,
            }),
            available: Condvar::new(),
            handles_epoch: AtomicU64::new(0),
            watched: Mutex::new(Vec::new()),
            link: Link::new(),
            probes: AtomicU64::new(0),
            metrics: HsmMetrics::default(),
        };
        {
            let lease = hsm.module.lease();
            hsm.sync(&lease)?;
            hsm.login(&lease)?;
        }
        Ok(hsm)
    }

    pub fn token_label(&self) -> &str {
        &self.label
    }

    /// Signing latency, failures and session waits of this HSM.
    pub fn metrics(&self) -> &HsmMetrics {
        &self.metrics
    }

    /// The current handle epoch (read it *before* finding a handle to cache).
    pub(crate) fn handles_epoch(&self) -> u64 {
        self.handles_epoch.load(Ordering::Acquire)
    }

    /// Remembers a key the appliance relies on (the probe checks it is still there).
    pub(crate) fn watch(&self, label: &str, public: &PublicKey) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        watched.retain(|w| w.label != label);
        watched.push(PublicKeyOf {
            label: label.into(),
            public: public.clone(),
        });
    }

    fn watched(&self) -> Vec<PublicKeyOf> {
        self.watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Brings the pool to the lease's module generation: after a re-initialisation the old
    /// sessions are forgotten (not closed), the token is found again and the keeper logs
    /// in again.
    fn sync(&self, lease: &Lease<'_>) -> Result<(), HsmError> {
        if !lease.initialized() {
            return Err(HsmError::DeviceLost {
                function: "Initialize".into(),
                rv: "the PKCS#11 module is not initialised".into(),
            });
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.generation == lease.generation() {
            return Ok(());
        }
        forget_sessions(&mut pool);
        let slot =
            find_token(lease.ctx(), &self.label)?.ok_or_else(|| HsmError::TokenNotFound {
                label: self.label.clone(),
            })?;
        pool.slot = slot;
        pool.generation = lease.generation();
        self.handles_epoch.fetch_add(1, Ordering::AcqRel);
        drop(pool);
        self.available.notify_all();
        self.login(lease)
    }

    /// (Re)opens the keeper session and logs the application in on it.
    fn login(&self, lease: &Lease<'_>) -> Result<(), HsmError> {
        let slot = self.pool.lock().unwrap_or_else(|p| p.into_inner()).slot;
        let session = lease
            .ctx()
            .open_rw_session(slot)
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
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).keeper = Some(session);
        Ok(())
    }

    /// Probes run since the HSM was opened.
    pub fn probe_count(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// Liveness probe: the token is still present under its label (C_GetTokenInfo on its
    /// slot), a pooled session is still logged in (C_GetSessionInfo), and every key the
    /// appliance loaded is still found by label (one C_FindObjects each). About 70 us plus
    /// 60 us per key on SoftHSM; no signature. `/healthz` reads the recorded result.
    pub fn probe(&self) -> Result<(), HsmError> {
        self.probes.fetch_add(1, Ordering::Relaxed);
        let result = self.check();
        self.link.record(
            result.as_ref().map(|_| ()).map_err(|e| e.cause()),
            super::supervisor::HEALTH_PROBE_INTERVAL,
        );
        result
    }

    fn check(&self) -> Result<(), HsmError> {
        self.link.refuse_if_down()?;
        let watched = self.watched();
        let lease = self.module.lease();
        let result = self.sync(&lease).and_then(|()| {
            let slot = self.pool.lock().unwrap_or_else(|p| p.into_inner()).slot;
            match lease.ctx().get_token_info(slot) {
                Ok(info) if info.token_initialized() && info.label().trim_end() == self.label => {}
                _ => {
                    return Err(HsmError::TokenNotFound {
                        label: self.label.clone(),
                    })
                }
            }
            let found = self.run(&lease, |s| {
                if !matches!(
                    s.get_session_info()?.session_state(),
                    SessionState::RwUser | SessionState::RoUser
                ) {
                    return Err(CkError::Pkcs11(
                        RvError::UserNotLoggedIn,
                        cryptoki::context::Function::GetSessionInfo,
                    ));
                }
                keys_in(s, &watched, false)
            });
            found.map_err(HsmError::from_ck_or)?
        });
        drop(lease);
        if let Err(e) = &result {
            self.metrics.error(e.kind());
            self.link.fault(e);
        }
        result
    }

    /// Re-establishes the link after a fault: first on the current module initialisation
    /// (new sessions, login, keys), and if that fails after C_Finalize + C_Initialize.
    /// Every watched key must be found with the public key it had. Called by the
    /// supervisor only.
    pub(super) fn reconnect(&self) -> Result<(), HsmError> {
        let result = self.reconnect_once();
        if let Err(e) = &result {
            self.metrics.error(e.kind());
        }
        result
    }

    fn reconnect_once(&self) -> Result<(), HsmError> {
        let seen = {
            let lease = self.module.lease();
            if lease.initialized() && self.reestablish(&lease).is_ok() {
                return Ok(());
            }
            lease.generation()
        };
        self.module.reinitialize(seen)?;
        let lease = self.module.lease();
        self.reestablish(&lease)
    }

    fn reestablish(&self, lease: &Lease<'_>) -> Result<(), HsmError> {
        {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.generation == lease.generation() {
                // Same initialisation: close them properly (login ends with the last one).
                let n = pool.idle.len();
                pool.idle.clear();
                pool.open = pool.open.saturating_sub(n);
                pool.keeper = None;
            }
            // `sync` then finds the token again, moves the handle epoch on and logs in.
            pool.generation = u64::MAX;
        }
        self.sync(lease)?;
        let watched = self.watched();
        self.run(lease, |s| keys_in(s, &watched, true))
            .map_err(HsmError::from_ck_or)?
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
        self.call(None, op)
    }

    /// As `with_session_raw` for an operation on an object handle found in handle epoch
    /// `epoch`: refused with `StaleHandle` (before any call) if the epoch has moved on.
    pub(crate) fn with_handle<R>(
        &self,
        epoch: u64,
        op: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, SessionError> {
        self.call(Some(epoch), op)
    }

    fn call<R>(
        &self,
        epoch: Option<u64>,
        op: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, SessionError> {
        self.link.refuse_if_down().map_err(SessionError::Hsm)?;
        let lease = self.module.lease();
        let result = self.sync(&lease).map_err(SessionError::Hsm).and_then(|()| {
            if epoch.is_some_and(|e| e != self.handles_epoch()) {
                return Err(SessionError::StaleHandle);
            }
            self.run(&lease, op)
        });
        drop(lease);
        match &result {
            Err(SessionError::Ck(e)) if is_fault(e) => self.link.fault(&HsmError::from_ck_ref(e)),
            Err(SessionError::Hsm(e)) if e.is_fault() => self.link.fault(e),
            _ => {}
        }
        if let Some(kind) = result.as_ref().err().and_then(SessionError::kind) {
            self.metrics.error(kind);
        }
        result
    }

    /// One call on a pooled session under `lease` (already synced).
    fn run<R>(
        &self,
        lease: &Lease<'_>,
        op: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, SessionError> {
        let session = self.checkout(lease)?;
        match op(&session) {
            Err(e) if session_lost(&e) => {
                drop(session);
                self.release_slot();
                self.login(lease).map_err(SessionError::Hsm)?;
                let fresh = self.checkout(lease)?;
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

    fn checkout(&self, lease: &Lease<'_>) -> Result<Session, SessionError> {
        crate::metrics::timed(&self.metrics.pool_wait, || self.take_session(lease))
    }

    fn take_session(&self, lease: &Lease<'_>) -> Result<Session, SessionError> {
        let mut state = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        // Login state ends with the application's last session: if the keeper is gone,
        // log in again before handing out a session that would otherwise see no keys.
        if state.keeper.is_none() {
            drop(state);
            self.login(lease).map_err(SessionError::Hsm)?;
            state = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        }
        loop {
            if let Some(s) = state.idle.pop() {
                return Ok(s);
            }
            if state.open < self.max_sessions {
                state.open += 1;
                let slot = state.slot;
                drop(state);
                return lease.ctx().open_rw_session(slot).map_err(|e| {
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
        let mut state = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        state.idle.push(session);
        drop(state);
        self.available.notify_one();
    }

    fn release_slot(&self) {
        let mut state = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.available.notify_one();
    }

    /// Drops every pooled session (tests use this to simulate a lost session; the next
    /// call must recover by itself).
    pub fn close_all_sessions(&self) {
        let _lease = self.module.lease();
        let mut state = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
        state.keeper = None;
    }

    /// The library context, for the benchmark's bare sessions (outside the pool).
    pub(crate) fn context(&self) -> Pkcs11 {
        self.module.lease().ctx().clone()
    }
    pub(crate) fn slot(&self) -> Slot {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).slot
    }
}

/// Sessions of a finalised module generation: their handles are dead and their numbers
/// are handed out again, so closing them could close someone else's session. Leak them.
/// (None is checked out then: the module is only finalised while no lease is held.)
fn forget_sessions(pool: &mut PoolState) {
    pool.open = pool.open.saturating_sub(pool.idle.len());
    for s in pool.idle.drain(..).chain(pool.keeper.take()) {
        std::mem::forget(s);
    }
}

/// `Err` naming the first watched key that is not in the token under its label (or, with
/// `compare_public`, holds another public key than the one it was loaded with).
fn keys_in(
    s: &Session,
    watched: &[PublicKeyOf],
    compare_public: bool,
) -> Result<Result<(), HsmError>, CkError> {
    for w in watched {
        let label = || w.label.clone();
        if find_in(s, &w.label, ObjectClass::PRIVATE_KEY)?.is_none() {
            return Ok(Err(HsmError::KeyNotFound { label: label() }));
        }
        if !compare_public {
            continue;
        }
        match public_in(s, &w.label, w.public.algorithm)? {
            Some(p) if p == w.public => {}
            Some(_) => {
                return Ok(Err(HsmError::KeyMismatch {
                    label: label(),
                    reason: "the token holds another public key under this label".into(),
                }))
            }
            None => return Ok(Err(HsmError::KeyNotFound { label: label() })),
        }
    }
    Ok(Ok(()))
}
