//! One PKCS#11 library context per module per process, and its re-initialisation.
//!
//! Initialising a module twice in one process crashes some modules (SoftHSM, see
//! rust-cryptoki issue 260), and login state is per application, so every `Hsm` in the
//! process shares the [`Module`] created here.
//!
//! A module may have to be finalised and initialised again to recover: SoftHSM 2.6.1 marks
//! a token invalid for good once its directory is gone, and only `C_Initialize` scans the
//! token directory again. C_Finalize then C_Initialize is safe; the danger is a call racing
//! with it. So every PKCS#11 call runs under a [`Lease`] (a read lock) and
//! [`Module::reinitialize`] takes the write lock: no call is in flight while the library is
//! finalised. Each re-initialisation bumps the module generation; sessions and object
//! handles of an older generation are dead (and their numbers are reused), so holders must
//! drop them without closing them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use super::error::HsmError;

/// A loaded PKCS#11 module, shared by every `Hsm` of the process.
pub struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    state: RwLock<ModuleState>,
}

struct ModuleState {
    /// Bumped by every finalisation: sessions and handles of older generations are dead.
    generation: u64,
    /// False after a C_Initialize that failed: every call fails until one succeeds.
    initialized: bool,
}

/// Permission to make PKCS#11 calls: the module is not finalised while a lease is held.
/// Never take a second lease while holding one (a waiting re-initialisation would
/// deadlock them).
pub struct Lease<'a> {
    state: RwLockReadGuard<'a, ModuleState>,
    ctx: &'a Pkcs11,
}

impl Lease<'_> {
    pub fn ctx(&self) -> &Pkcs11 {
        self.ctx
    }
    pub fn generation(&self) -> u64 {
        self.state.generation
    }
    pub fn initialized(&self) -> bool {
        self.state.initialized
    }
}

static MODULES: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());

fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Loads and initialises `module` once; later calls return the same module.
pub fn module_for(module: &Path) -> Result<Arc<Module>, HsmError> {
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.iter().find(|m| m.path == module) {
        return Ok(m.clone());
    }
    let load_err = |reason: String| HsmError::ModuleLoad {
        module: module.to_owned(),
        reason,
    };
    if !module.exists() {
        return Err(load_err("file not found".into()));
    }
    let ctx = Pkcs11::new(module).map_err(|e| load_err(e.to_string()))?;
    initialize(&ctx).map_err(|e| load_err(format!("C_Initialize: {e}")))?;
    let m = Arc::new(Module {
        path: module.to_owned(),
        ctx,
        state: RwLock::new(ModuleState {
            generation: 0,
            initialized: true,
        }),
    });
    modules.push(m.clone());
    Ok(m)
}

/// The library context of `module`, for one-shot provisioning calls (`init`) made before
/// anything in the process can re-initialise it.
pub fn context_for(module: &Path) -> Result<Pkcs11, HsmError> {
    Ok(module_for(module)?.ctx.clone())
}

impl Module {
    pub fn lease(&self) -> Lease<'_> {
        Lease {
            state: self.state.read().unwrap_or_else(|p| p.into_inner()),
            ctx: &self.ctx,
        }
    }

    /// C_Finalize then C_Initialize, unless the module was re-initialised since the caller
    /// saw generation `seen` (then only a failed C_Initialize is retried). Waits for every
    /// call in flight to finish first.
    pub fn reinitialize(&self, seen: u64) -> Result<(), HsmError> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state.generation == seen {
            if state.initialized {
                // CKR_CRYPTOKI_NOT_INITIALIZED and the like: nothing left to finalise.
                let _ = self.ctx.clone().finalize();
            }
            state.generation += 1;
            state.initialized = false;
        }
        if !state.initialized {
            initialize(&self.ctx).map_err(|e| match e {
                CkError::Pkcs11(rv, function) => HsmError::DeviceLost {
                    function: format!("{function:?}"),
                    rv: rv.to_string(),
                },
                other => HsmError::ModuleLoad {
                    module: self.path.clone(),
                    reason: other.to_string(),
                },
            })?;
            state.initialized = true;
        }
        tracing::info!(module = %self.path.display(), generation = state.generation,
            "PKCS#11 module re-initialised");
        Ok(())
    }
}

/// Finds the slot whose token carries `label` (PKCS#11 pads labels with spaces). A slot
/// whose token cannot be read is not it (SoftHSM answers CKR_GENERAL_ERROR for a token
/// whose directory is gone): the label is then reported missing.
pub fn find_token(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, HsmError> {
    for slot in ctx.get_slots_with_token().map_err(HsmError::from_ck)? {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
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
