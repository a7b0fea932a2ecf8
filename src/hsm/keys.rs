//! Key pairs inside the token: generation with non-extractable templates, lookup by label,
//! and reading the public half as SubjectPublicKeyInfo.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;

use super::error::HsmError;
use super::pool::{Hsm, SessionError};
use crate::config::Algorithm;

/// DER of OID prime256v1 (1.2.840.10045.3.1.7), the CKA_EC_PARAMS of a P-256 key.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of OID id-Ed25519 (1.3.101.112), the CKA_EC_PARAMS of an Ed25519 key.
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// SPKI prefix for a 65-byte uncompressed P-256 point.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SPKI prefix for a 32-byte Ed25519 public key.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Whether `ensure_key_pair` found an existing key or generated a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOutcome {
    Existing,
    Generated,
}

/// The public half of a token key, in the two shapes callers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: Algorithm,
    /// Raw key: 65-byte uncompressed SEC1 point (P-256) or 32 bytes (Ed25519).
    pub raw: Vec<u8>,
}

impl PublicKey {
    pub fn spki_der(&self) -> Vec<u8> {
        let prefix = match self.algorithm {
            Algorithm::EcdsaP256 => P256_SPKI_PREFIX,
            Algorithm::Ed25519 => ED25519_SPKI_PREFIX,
        };
        [prefix, &self.raw].concat()
    }
}

fn params(alg: Algorithm) -> &'static [u8] {
    match alg {
        Algorithm::EcdsaP256 => P256_PARAMS,
        Algorithm::Ed25519 => ED25519_PARAMS,
    }
}

fn key_type(alg: Algorithm) -> KeyType {
    match alg {
        Algorithm::EcdsaP256 => KeyType::EC,
        Algorithm::Ed25519 => KeyType::EC_EDWARDS,
    }
}

/// Finds the key pair labelled `label`, generating it inside the token if absent.
pub fn ensure_key_pair(hsm: &Hsm, label: &str, alg: Algorithm) -> Result<KeyOutcome, HsmError> {
    if find_key(hsm, label, ObjectClass::PRIVATE_KEY)?.is_some() {
        check_key_type(hsm, label, alg)?;
        return Ok(KeyOutcome::Existing);
    }
    generate_key_pair(hsm, label, alg)?;
    Ok(KeyOutcome::Generated)
}

/// A private-key attribute set where the module allows it: its name and value.
type OptionalAttribute = (&'static str, fn() -> Attribute);

/// Attributes set false on private keys where the module allows them: the key can neither
/// decrypt nor unwrap, and its attributes can neither be changed nor copied into a new
/// object with weaker ones.
const OPTIONAL_PRIVATE: [OptionalAttribute; 4] = [
    ("CKA_DECRYPT", || Attribute::Decrypt(false)),
    ("CKA_UNWRAP", || Attribute::Unwrap(false)),
    ("CKA_MODIFIABLE", || Attribute::Modifiable(false)),
    ("CKA_COPYABLE", || Attribute::Copyable(false)),
];

/// True for the return values a module gives for a template attribute it does not accept.
fn template_refused(e: &SessionError) -> bool {
    matches!(
        e,
        SessionError::Ck(CkError::Pkcs11(
            RvError::AttributeTypeInvalid
                | RvError::AttributeValueInvalid
                | RvError::TemplateInconsistent
                | RvError::AttributeReadOnly,
            _
        ))
    )
}

/// Generates a key pair whose private half is a token object that is private, sensitive and
/// never extractable: it can sign and nothing else (CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE
/// false), and it never leaves the token. CKA_MODIFIABLE and CKA_COPYABLE are false too.
/// If the module refuses one of the optional attributes ([`OPTIONAL_PRIVATE`]) the key is
/// generated without it, and a warning names it.
pub fn generate_key_pair(hsm: &Hsm, label: &str, alg: Algorithm) -> Result<(), HsmError> {
    let mechanism = match alg {
        Algorithm::EcdsaP256 => Mechanism::EccKeyPairGen,
        Algorithm::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
    };
    let id = label.as_bytes().to_vec();
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params(alg).to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let base = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id),
    ];
    let generate = |optional: &[usize]| {
        let mut private = base.clone();
        private.extend(optional.iter().map(|&i| (OPTIONAL_PRIVATE[i].1)()));
        hsm.with_session_raw(|s| s.generate_key_pair(&mechanism, &public, &private))
    };
    let all: Vec<usize> = (0..OPTIONAL_PRIVATE.len()).collect();
    let err = match generate(&all) {
        Ok(_) => return Ok(()),
        Err(e) if template_refused(&e) => HsmError::from_ck_or(e),
        Err(e) => return Err(HsmError::from_ck_or(e)),
    };
    // Drop optional attributes one at a time until the module accepts the template, and
    // name every attribute the key was generated without.
    let mut kept = all.clone();
    for i in all.iter().copied() {
        kept.retain(|&k| k != i);
        match generate(&kept) {
            Ok(_) => {
                let missing: Vec<&str> = all
                    .iter()
                    .filter(|k| !kept.contains(k))
                    .map(|&k| OPTIONAL_PRIVATE[k].0)
                    .collect();
                tracing::warn!(
                    label,
                    without = ?missing,
                    error = %err,
                    "PKCS#11 module refused a private-key attribute; key generated without it"
                );
                return Ok(());
            }
            Err(e) if template_refused(&e) => {}
            Err(e) => return Err(HsmError::from_ck_or(e)),
        }
    }
    // Even the base template was refused: report the first error.
    Err(err)
}

/// Finds a key object of `class` by label.
pub fn find_key(
    hsm: &Hsm,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, HsmError> {
    hsm.with_session(|s| find_in(s, label, class))
}

/// Finds a key object of `class` by label on `session`.
pub(crate) fn find_in(
    session: &Session,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, CkError> {
    let template = [
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    Ok(session.find_objects(&template)?.into_iter().next())
}

/// The public key labelled `label` read on `session`: `None` when there is no public key
/// object; a point that is not an `alg` key comes back raw (it equals no real key).
pub(crate) fn public_in(
    session: &Session,
    label: &str,
    alg: Algorithm,
) -> Result<Option<PublicKey>, CkError> {
    let Some(handle) = find_in(session, label, ObjectClass::PUBLIC_KEY)? else {
        return Ok(None);
    };
    let attrs = session.get_attributes(handle, &[AttributeType::EcPoint])?;
    let point = attrs.into_iter().find_map(|a| match a {
        Attribute::EcPoint(p) => Some(p),
        _ => None,
    });
    Ok(point.map(|p| PublicKey {
        algorithm: alg,
        raw: unwrap_ec_point(&p, alg).unwrap_or(p),
    }))
}

fn check_key_type(hsm: &Hsm, label: &str, alg: Algorithm) -> Result<(), HsmError> {
    let handle = require_key(hsm, label, ObjectClass::PRIVATE_KEY)?;
    let attrs = hsm.with_session(|s| s.get_attributes(handle, &[AttributeType::KeyType]))?;
    let found = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(kt) => Some(*kt),
        _ => None,
    });
    if found != Some(key_type(alg)) {
        return Err(HsmError::KeyMismatch {
            label: label.into(),
            reason: format!("expected a {} key, found {found:?}", alg.name()),
        });
    }
    Ok(())
}

pub(crate) fn require_key(
    hsm: &Hsm,
    label: &str,
    class: ObjectClass,
) -> Result<ObjectHandle, HsmError> {
    find_key(hsm, label, class)?.ok_or_else(|| HsmError::KeyNotFound {
        label: label.into(),
    })
}

/// Reads the public key of the pair labelled `label`.
pub fn public_key(hsm: &Hsm, label: &str, alg: Algorithm) -> Result<PublicKey, HsmError> {
    let handle = require_key(hsm, label, ObjectClass::PUBLIC_KEY)?;
    let attrs = hsm.with_session(|s| s.get_attributes(handle, &[AttributeType::EcPoint]))?;
    let point = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| HsmError::Malformed(format!("key {label:?} has no CKA_EC_POINT")))?;
    let raw = unwrap_ec_point(&point, alg).ok_or_else(|| HsmError::KeyMismatch {
        label: label.into(),
        reason: format!("CKA_EC_POINT is not a {} public key", alg.name()),
    })?;
    Ok(PublicKey {
        algorithm: alg,
        raw,
    })
}

/// CKA_EC_POINT is a DER OCTET STRING on SoftHSM and most modules, the bare point on some
/// others; accept both by length.
fn unwrap_ec_point(point: &[u8], alg: Algorithm) -> Option<Vec<u8>> {
    let raw_len = match alg {
        Algorithm::EcdsaP256 => 65,
        Algorithm::Ed25519 => 32,
    };
    let raw = if point.len() == raw_len + 2 && point[0] == 0x04 && point[1] as usize == raw_len {
        &point[2..]
    } else if point.len() == raw_len {
        point
    } else {
        return None;
    };
    if alg == Algorithm::EcdsaP256 && raw[0] != 0x04 {
        return None;
    }
    Some(raw.to_vec())
}

/// Reads attributes of the private key for custody checks (never the value).
pub fn private_key_flags(hsm: &Hsm, label: &str) -> Result<KeyFlags, HsmError> {
    let handle = require_key(hsm, label, ObjectClass::PRIVATE_KEY)?;
    let wanted = [
        AttributeType::Token,
        AttributeType::Private,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::AlwaysSensitive,
        AttributeType::NeverExtractable,
        AttributeType::Sign,
        AttributeType::Decrypt,
        AttributeType::Unwrap,
        AttributeType::Derive,
        AttributeType::Modifiable,
        AttributeType::Copyable,
    ];
    let attrs = hsm.with_session(|s| s.get_attributes(handle, &wanted))?;
    let mut flags = KeyFlags::default();
    for a in attrs {
        match a {
            Attribute::Token(v) => flags.token = v,
            Attribute::Private(v) => flags.private = v,
            Attribute::Sensitive(v) => flags.sensitive = v,
            Attribute::Extractable(v) => flags.extractable = v,
            Attribute::AlwaysSensitive(v) => flags.always_sensitive = v,
            Attribute::NeverExtractable(v) => flags.never_extractable = v,
            Attribute::Sign(v) => flags.sign = v,
            Attribute::Decrypt(v) => flags.decrypt = v,
            Attribute::Unwrap(v) => flags.unwrap = v,
            Attribute::Derive(v) => flags.derive = v,
            Attribute::Modifiable(v) => flags.modifiable = v,
            Attribute::Copyable(v) => flags.copyable = v,
            _ => {}
        }
    }
    Ok(flags)
}

/// Custody-relevant attributes of a private key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeyFlags {
    pub token: bool,
    pub private: bool,
    pub sensitive: bool,
    pub extractable: bool,
    pub always_sensitive: bool,
    pub never_extractable: bool,
    pub sign: bool,
    pub decrypt: bool,
    pub unwrap: bool,
    pub derive: bool,
    pub modifiable: bool,
    pub copyable: bool,
}

/// Asks the token for CKA_VALUE of the private key. A custodial token answers
/// `Sensitive` (CKR_ATTRIBUTE_SENSITIVE); anything else is a custody failure.
pub fn private_value_access(hsm: &Hsm, label: &str) -> Result<AttributeInfo, HsmError> {
    let handle = require_key(hsm, label, ObjectClass::PRIVATE_KEY)?;
    let info = hsm.with_session(|s| s.get_attribute_info(handle, &[AttributeType::Value]))?;
    info.into_iter()
        .next()
        .ok_or_else(|| HsmError::Malformed("no answer for CKA_VALUE".into()))
}
