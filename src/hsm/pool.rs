//! A logged-in token and a pool of PKCS#11 sessions shared by every signer.
//!
//! `Session` is `Send` but not `Sync`, so each call checks one out exclusively. A keeper
//! session stays open for the life of the pool because PKCS#11 login state ends when the
//! application's last session closes. A call that finds its session dead (closed, device
//! reset, login lost) reopens, logs in again and retries once.

use std::sync::{Condvar, Mutex};

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

    /// Cheap liveness probe used by `/healthz`: C_GetSessionInfo on a pooled session.
    pub fn probe(&self) -> Result<(), HsmError> {
        self.with_session(|s| s.get_session_info().map(|_| ()))
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
