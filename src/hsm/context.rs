//! One PKCS#11 library context per module per process.
//!
//! Initialising a module twice in one process crashes some modules (SoftHSM, see
//! rust-cryptoki issue 260), and login state is per application, so every `Hsm` in the
//! process shares the context created here.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use super::error::HsmError;

static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// Loads and initialises `module` once; later calls return the same context.
pub fn context_for(module: &Path) -> Result<Pkcs11, HsmError> {
    let mut contexts = CONTEXTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ctx)) = contexts.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    let load_err = |reason: String| HsmError::ModuleLoad {
        module: module.to_owned(),
        reason,
    };
    if !module.exists() {
        return Err(load_err("file not found".into()));
    }
    let ctx = Pkcs11::new(module).map_err(|e| load_err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_err(format!("C_Initialize: {e}"))),
    }
    contexts.push((module.to_owned(), ctx.clone()));
    Ok(ctx)
}

/// Finds the slot whose token carries `label` (PKCS#11 pads labels with spaces).
pub fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    for slot in ctx.get_slots_with_token().map_err(HsmError::from_ck)? {
        let info = ctx.get_token_info(slot).map_err(HsmError::from_ck)?;
        if info.token_initialized() && info.label().trim_end() == label {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// A slot holding a token that has not been initialised yet (SoftHSM always offers one).
pub fn find_free_slot(ctx: &Pkcs11) -> Result<Option<Slot>, HsmError> {
    for slot in ctx.get_slots_with_token().map_err(HsmError::from_ck)? {
        let info = ctx.get_token_info(slot).map_err(HsmError::from_ck)?;
        if !info.token_initialized() {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}
