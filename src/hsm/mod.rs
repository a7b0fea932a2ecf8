//! Key custody through PKCS#11: the only place that talks to the HSM.
//!
//! Private keys are generated inside the token and never leave it; everything else in
//! credmint holds an `HsmKey` and asks it to sign.

pub mod admission;
mod context;
mod error;
pub mod keys;
pub mod mac;
mod pool;
pub mod recovery;
mod signer;
mod supervisor;
pub mod token;

pub use admission::{Admission, Admitted, Overloaded};
pub use context::context_for;
pub use error::HsmError;
pub use keys::{KeyFlags, KeyOutcome, PublicKey};
pub use pool::Hsm;
pub use signer::{ecdsa_raw_to_der, HsmKey};
pub use supervisor::{
    run_health_probe, HealthProbe, HEALTH_PROBE_INTERVAL, RECONNECT_INITIAL, RECONNECT_MAX,
};

/// True when a token with this label exists in the module.
pub fn token_exists(ctx: &cryptoki::context::Pkcs11, label: &str) -> Result<bool, HsmError> {
    Ok(context::find_token(ctx, label)?.is_some())
}
