//! A secret HMAC key inside the token, for deriving bearer secrets the appliance must be
//! able to check again (ACME External Account Binding keys) without storing them.
//!
//! Why derive instead of store: an EAB key is an HMAC key, and an HMAC cannot be checked
//! against a hash of its key the way an enrollment token is checked against the hash of
//! the token. Deriving each EAB key as HMAC-SHA256(token key, context || kid) inside the
//! token means nothing secret is written anywhere (not the ledger, not redb), a stolen
//! ledger or database yields no EAB key, and the token's key never leaves the token
//! (generic secret, sensitive, never extractable, usable only to sign).

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use super::error::HsmError;
use super::keys::{find_key, KeyOutcome};
use super::pool::Hsm;

/// Length of the token's HMAC key and of every derived secret (SHA-256 output).
pub const MAC_LEN: usize = 32;

/// Finds the secret key labelled `label`, generating it inside the token if it is missing.
pub fn ensure_mac_key(hsm: &Hsm, label: &str) -> Result<KeyOutcome, HsmError> {
    if find_key(hsm, label, ObjectClass::SECRET_KEY)?.is_some() {
        return Ok(KeyOutcome::Existing);
    }
    let template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Derive(false),
        Attribute::ValueLen((MAC_LEN as u64).into()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(label.as_bytes().to_vec()),
    ];
    hsm.with_session(|s| s.generate_key(&Mechanism::GenericSecretKeyGen, &template))?;
    tracing::info!(label, "HMAC key generated in the token");
    Ok(KeyOutcome::Generated)
}

/// HMAC-SHA256 of `msg` under the token's secret key `label`. Blocking.
pub fn hmac_sha256(hsm: &Hsm, label: &str, msg: &[u8]) -> Result<[u8; MAC_LEN], HsmError> {
    let out = hsm.with_session(|s| {
        let key = super::keys::find_in(s, label, ObjectClass::SECRET_KEY)?.ok_or(
            cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::KeyHandleInvalid,
                cryptoki::context::Function::Sign,
            ),
        )?;
        s.sign(&Mechanism::Sha256Hmac, key, msg)
    })?;
    out.try_into()
        .map_err(|v: Vec<u8>| HsmError::Malformed(format!("HMAC-SHA256 of {} bytes", v.len())))
}
