//! HSM failures, grouped by what the operator has to do about them.
//!
//! Messages name the module path, token label or key label, never a PIN.

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};

use crate::secret::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load PKCS#11 module {module}: {reason}")]
    ModuleLoad { module: PathBuf, reason: String },
    #[error("no token labelled {label:?} in any slot of the PKCS#11 module")]
    TokenNotFound { label: String },
    #[error("HSM login to token {label:?} refused: wrong PIN")]
    WrongPin { label: String },
    #[error("HSM user PIN of token {label:?} is locked")]
    PinLocked { label: String },
    #[error("HSM PIN unavailable: {0}")]
    Pin(#[from] SecretError),
    #[error("no private key labelled {label:?} in the token")]
    KeyNotFound { label: String },
    #[error("key {label:?} in the token does not match the configuration: {reason}")]
    KeyMismatch { label: String, reason: String },
    #[error("HSM device lost during {function}: {rv}")]
    DeviceLost { function: String, rv: String },
    #[error("PKCS#11 {function} failed: {rv}")]
    Pkcs11 { function: String, rv: String },
    #[error("HSM returned a malformed value: {0}")]
    Malformed(String),
    /// The serving appliance lost the HSM (`cause` is the [`HsmError::kind`] of the fault)
    /// and is reconnecting; refused before any PKCS#11 call.
    #[error("HSM unavailable ({cause}) for {down_secs} s; reconnecting")]
    Unavailable {
        cause: &'static str,
        down_secs: u64,
        /// Seconds until the next reconnection attempt (at least 1).
        retry_after_secs: u64,
    },
}

impl HsmError {
    /// Short, fixed category for metrics, logs and exit codes; never carries values.
    pub fn kind(&self) -> &'static str {
        match self {
            HsmError::ModuleLoad { .. } => "module_load",
            HsmError::TokenNotFound { .. } => "token_not_found",
            HsmError::WrongPin { .. } => "wrong_pin",
            HsmError::PinLocked { .. } => "pin_locked",
            HsmError::Pin(_) => "pin_source",
            HsmError::KeyNotFound { .. } => "key_not_found",
            HsmError::KeyMismatch { .. } => "key_mismatch",
            HsmError::DeviceLost { .. } => "device_lost",
            HsmError::Pkcs11 { .. } => "pkcs11",
            HsmError::Malformed(_) => "malformed",
            HsmError::Unavailable { .. } => "unavailable",
        }
    }

    /// The fault behind this error: the cause of an `Unavailable`, else its own kind.
    pub fn cause(&self) -> &'static str {
        match self {
            HsmError::Unavailable { cause, .. } => cause,
            other => other.kind(),
        }
    }

    /// True when the token, its keys or the login are unusable (not the request): a
    /// serving appliance reports itself degraded and reconnects.
    pub(crate) fn is_fault(&self) -> bool {
        matches!(
            self,
            HsmError::ModuleLoad { .. }
                | HsmError::TokenNotFound { .. }
                | HsmError::WrongPin { .. }
                | HsmError::PinLocked { .. }
                | HsmError::Pin(_)
                | HsmError::KeyNotFound { .. }
                | HsmError::KeyMismatch { .. }
                | HsmError::DeviceLost { .. }
        )
    }

    /// Maps a cryptoki error, keeping which C function failed.
    pub(crate) fn from_ck(err: CkError) -> HsmError {
        HsmError::from_ck_ref(&err)
    }

    /// As [`HsmError::from_ck`], from a borrowed error.
    pub(crate) fn from_ck_ref(err: &CkError) -> HsmError {
        match *err {
            CkError::Pkcs11(rv, function) => {
                let function = format!("{function:?}");
                match rv {
                    RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::DeviceError => {
                        HsmError::DeviceLost {
                            function,
                            rv: rv.to_string(),
                        }
                    }
                    _ => HsmError::Pkcs11 {
                        function,
                        rv: rv.to_string(),
                    },
                }
            }
            ref other => HsmError::Pkcs11 {
                function: "cryptoki".into(),
                rv: other.to_string(),
            },
        }
    }
}

/// True when the session handle itself is gone (closed, invalidated, device reset) and the
/// operation is worth retrying once on a freshly opened session.
pub(crate) fn session_lost(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent,
            _
        )
    )
}

/// True for return values that say the module, token or login is unusable (not the
/// request): a serving appliance then reconnects. Object-handle errors are not in the list:
/// the caller re-finds the key and reports `KeyNotFound` if it is gone.
pub(crate) fn is_fault(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(
            RvError::GeneralError
                | RvError::FunctionFailed
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::PinIncorrect
                | RvError::PinLocked,
            _
        ) | CkError::LibraryLoading(_)
    )
}

/// True when a cached object handle no longer names an object (re-find by label).
pub(crate) fn handle_stale(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}
