//! Token provisioning for the embedded default: a SoftHSM2 token store under the data
//! directory, and C_InitToken/C_InitPIN through PKCS#11 (works on any module that allows
//! token initialisation; real HSMs are usually provisioned by their own tools instead).

use std::path::{Path, PathBuf};

use cryptoki::session::UserType;
use secrecy::SecretString;

use super::context::{context_for, find_free_slot, find_token};
use super::error::HsmError;
use crate::config::{HsmConfig, SoftHsmConfig};

/// A file `prepare_softhsm` needed, and what it is for.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {source}", path.display())]
pub struct PrepareError {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Whether [`prepare_softhsm`] may create the token directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDir {
    /// `init`: create it if missing.
    Create,
    /// `serve` and the other verbs: it must exist. A missing token directory means the
    /// token is lost; recreating it empty would hide that.
    MustExist,
}

/// Writes `<data_dir>/softhsm2.conf` from the template and points SOFTHSM2_CONF at it,
/// unless the environment already sets SOFTHSM2_CONF (tests and operators may). Must run
/// before the module is first loaded: SoftHSM reads its config in C_Initialize. Errors
/// name the file that failed (template, token directory or the written config).
pub fn prepare_softhsm(
    soft: &SoftHsmConfig,
    data_dir: &Path,
    token_dir: TokenDir,
) -> Result<(), PrepareError> {
    if std::env::var_os("SOFTHSM2_CONF").is_some() {
        return Ok(());
    }
    let err = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| PrepareError { what, path, source }
    };
    let template = std::fs::read_to_string(&soft.conf_template).map_err(err(
        "SoftHSM2 config template (hsm.softhsm.conf_template)",
        &soft.conf_template,
    ))?;
    let token_dir_what = "SoftHSM2 token directory (hsm.softhsm.token_dir)";
    if token_dir == TokenDir::Create {
        std::fs::create_dir_all(&soft.token_dir).map_err(err(token_dir_what, &soft.token_dir))?;
    } else if !soft.token_dir.is_dir() {
        return Err(err(token_dir_what, &soft.token_dir)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "missing, so the token it held is lost: restore the directory (from a backup) \
             and start again; only `credmint init` creates a token directory",
        )));
    }
    let token_dir =
        std::fs::canonicalize(&soft.token_dir).map_err(err(token_dir_what, &soft.token_dir))?;
    let conf = template.replace("@TOKEN_DIR@", &token_dir.to_string_lossy());
    let path = data_dir.join("softhsm2.conf");
    std::fs::write(&path, conf).map_err(err("SoftHSM2 config", &path))?;
    std::env::set_var("SOFTHSM2_CONF", &path);
    Ok(())
}

/// Initialises a token labelled `cfg.token_label` in a free slot and sets its user PIN.
/// Returns false (and changes nothing) when such a token already exists.
pub fn ensure_token(
    cfg: &HsmConfig,
    so_pin: &SecretString,
    user_pin: &SecretString,
) -> Result<bool, HsmError> {
    // Two initialisations racing for the same free slot would re-initialise each other's
    // token: serialise token creation within the process.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let ctx = context_for(&cfg.module)?;
    if find_token(&ctx, &cfg.token_label)?.is_some() {
        return Ok(false);
    }
    let slot = find_free_slot(&ctx)?.ok_or_else(|| HsmError::TokenNotFound {
        label: cfg.token_label.clone(),
    })?;
    ctx.init_token(slot, so_pin, &cfg.token_label)
        .map_err(HsmError::from_ck)?;
    // SoftHSM renumbers slots after initialisation: look the token up again by label.
    let slot = find_token(&ctx, &cfg.token_label)?.ok_or_else(|| HsmError::TokenNotFound {
        label: cfg.token_label.clone(),
    })?;
    let session = ctx.open_rw_session(slot).map_err(HsmError::from_ck)?;
    session
        .login(UserType::So, Some(so_pin))
        .map_err(HsmError::from_ck)?;
    session.init_pin(user_pin).map_err(HsmError::from_ck)?;
    session.logout().map_err(HsmError::from_ck)?;
    Ok(true)
}
