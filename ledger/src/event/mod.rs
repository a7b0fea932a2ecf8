//! Typed ledger events and their canonical body encodings.
//!
//! An event is encoded as `tag: u16 | body_len: u32 | body`. Each event type
//! is one struct implementing [`EventBody`] (its tag constant, its encoder and
//! its decoder side by side). Adding an event type is a local change: a struct
//! with an `EventBody` impl, one [`Event`] variant, and one arm in each of
//! `Event::tag`, `Event::encode_body` and `Event::decode`. Tags are never
//! reused or renumbered; FORMAT.md lists them.

use sha2::{Digest, Sha256};

use crate::codec::{Reader, Writer};

mod acme;
mod ca_import;
mod credential;
mod governance;
mod monitor;
mod operator;
pub mod policy;
mod rotation;

use crate::error::DecodeError;
pub use acme::{
    account_id, AcmeAccountChange, AcmeAccountChanged, AcmeAccountCreated, AcmeEabCreated, MAX_JWK,
};
pub use ca_import::{CaImported, MAX_CHAIN};
pub use credential::{ReuseDetected, ReuseKind, TokenIssued, TokenRevoked};
pub use governance::{AnomalyFlagged, AnomalyKind, ChangeRequested};
pub use governance::{
    ChangeKind, EnrollmentCreated, EnrollmentUsed, IntegrationChanged, IntegrationRegistered,
    IntegrationSpec, IntegrationStatus, OperatorCertIssued, PrivilegeClass, MAX_LIST, MAX_TEXT,
};
pub use monitor::{MonitorTokenCreated, MonitorTokenRevoked};
pub use operator::{OperatorApproved, OperatorRequested, MAX_OPERATOR_SPKI};
pub use policy::PolicyExtensions;
pub use rotation::{KeyRotated, MAX_SIGNATURE, ROTATION_CONTEXT};

/// Maximum encoded size of one event body (the CA certificate dominates).
pub const MAX_EVENT_BODY: usize = 1 << 20;
/// Maximum length of names, labels and other short strings.
pub const MAX_NAME: usize = 255;
/// Maximum length of the origin (it is also the checkpoint key name).
pub const MAX_ORIGIN: usize = 255;
/// Maximum number of keys listed in genesis.
pub const MAX_KEYS: usize = 64;
/// Maximum length of a DER SubjectPublicKeyInfo.
pub const MAX_SPKI: usize = 1024;
/// Maximum length of the CA certificate in genesis.
pub const MAX_CERT: usize = 65536;
/// Maximum length of a certificate serial number (X.509 allows 20 octets; slack for sign bytes).
pub const MAX_SERIAL: usize = 64;
/// Maximum length of a certificate subject string.
pub const MAX_SUBJECT: usize = 1024;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
pub const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// One event type's tag, encoder and decoder, kept together so they cannot drift.
pub trait EventBody: Sized {
    /// The `u16` type tag written before the body. Never reuse a tag.
    const TAG: u16;
    /// Writes the body (without tag or length).
    fn encode_body(&self, w: &mut Writer);
    /// Reads the body; the caller rejects trailing bytes.
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// What a key listed in genesis is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Signs X.509 certificates.
    Ca,
    /// Signs tokens (JWS).
    Token,
    /// Signs ledger checkpoints.
    Ledger,
}

impl KeyRole {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            KeyRole::Ca => 1,
            KeyRole::Token => 2,
            KeyRole::Ledger => 3,
        }
    }

    /// Parses the wire value.
    pub fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(KeyRole::Ca),
            2 => Ok(KeyRole::Token),
            3 => Ok(KeyRole::Ledger),
            tag => Err(DecodeError::UnknownTag {
                field: "key.role",
                tag: tag.into(),
            }),
        }
    }
}

/// Signature algorithm of a key listed in genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over P-256 with SHA-256.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// Wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            KeyAlgorithm::Ed25519 => 1,
            KeyAlgorithm::EcdsaP256 => 2,
        }
    }

    /// Parses the wire value.
    pub fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(KeyAlgorithm::Ed25519),
            2 => Ok(KeyAlgorithm::EcdsaP256),
            tag => Err(DecodeError::UnknownTag {
                field: "key.algorithm",
                tag: tag.into(),
            }),
        }
    }
}

/// A public key the appliance uses, as pinned in genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// What the key signs.
    pub role: KeyRole,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// Human label (e.g. the HSM object label).
    pub label: String,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

impl KeyInfo {
    /// SHA-256 of the DER SubjectPublicKeyInfo: the key's stable identifier.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// The raw 32-byte Ed25519 key, if this is an Ed25519 key whose SPKI has
    /// the one fixed 44-byte RFC 8410 form.
    pub fn ed25519_raw(&self) -> Option<[u8; 32]> {
        if self.algorithm != KeyAlgorithm::Ed25519 || self.spki_der.len() != 44 {
            return None;
        }
        let (prefix, raw) = self.spki_der.split_at(12);
        if prefix != ED25519_SPKI_PREFIX {
            return None;
        }
        raw.try_into().ok()
    }

    /// Builds the `KeyInfo` of a raw Ed25519 key.
    pub fn ed25519(role: KeyRole, label: impl Into<String>, raw: &[u8; 32]) -> Self {
        let mut spki_der = ED25519_SPKI_PREFIX.to_vec();
        spki_der.extend_from_slice(raw);
        KeyInfo {
            role,
            algorithm: KeyAlgorithm::Ed25519,
            label: label.into(),
            spki_der,
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(self.role.to_u8());
        w.u8(self.algorithm.to_u8());
        w.str(&self.label);
        w.bytes(&self.spki_der);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KeyInfo {
            role: KeyRole::from_u8(r.u8("key.role")?)?,
            algorithm: KeyAlgorithm::from_u8(r.u8("key.algorithm")?)?,
            label: r.str("key.label", MAX_NAME)?.to_owned(),
            spki_der: r.bytes("key.spki_der", MAX_SPKI)?.to_vec(),
        })
    }
}

/// Reads an RFC 5280 CRLReason code: 0..=10 except 7, which RFC 5280 leaves unused.
/// Any other byte is not a reason a revocation could carry, so it is a decode error like
/// an unknown tag (the record could not have been written by the appliance).
pub(crate) fn crl_reason(r: &mut Reader<'_>, field: &'static str) -> Result<u8, DecodeError> {
    match r.u8(field)? {
        v @ (0..=6 | 8..=10) => Ok(v),
        _ => Err(DecodeError::Invalid {
            field,
            reason: "not an RFC 5280 CRLReason code (0-6, 8-10)",
        }),
    }
}

/// Whether `name` is a valid signed-note key name (non-empty, no Unicode
/// whitespace, no '+', no control character); the origin doubles as the checkpoint key
/// name. Control characters are refused because C2SP forbids them anywhere in a note,
/// and a name that could never appear in a valid note is no key name.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// Record 0: binds the ledger's origin to its keys and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Checkpoint origin line and key name; a valid note key name.
    pub origin: String,
    /// Every key the appliance starts with; exactly one has role `Ledger`.
    pub keys: Vec<KeyInfo>,
    /// SHA-256 of the firmware configuration in force at genesis.
    pub config_digest: [u8; 32],
    /// DER of the CA certificate.
    pub ca_certificate_der: Vec<u8>,
}

impl Genesis {
    /// The single Ed25519 ledger-role key, raw. An auditor pins this key.
    pub fn ledger_key(&self) -> Result<[u8; 32], &'static str> {
        let mut found = None;
        for k in self.keys.iter().filter(|k| k.role == KeyRole::Ledger) {
            if found.is_some() {
                return Err("more than one ledger-role key");
            }
            found = Some(
                k.ed25519_raw()
                    .ok_or("ledger-role key is not an RFC 8410 Ed25519 key")?,
            );
        }
        found.ok_or("no ledger-role key")
    }
}

impl EventBody for Genesis {
    const TAG: u16 = 1;

    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.origin);
        w.count(self.keys.len());
        for k in &self.keys {
            k.encode(w);
        }
        w.fixed(&self.config_digest);
        w.bytes(&self.ca_certificate_der);
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let origin = r.str("genesis.origin", MAX_ORIGIN)?.to_owned();
        if !is_valid_key_name(&origin) {
            return Err(DecodeError::Invalid {
                field: "genesis.origin",
                reason: "must be a note key name: non-empty, no whitespace, no '+'",
            });
        }
        let n = r.count("genesis.keys", MAX_KEYS)?;
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(KeyInfo::decode(r)?);
        }
        Ok(Genesis {
            origin,
            keys,
            config_digest: r.hash("genesis.config_digest")?,
            ca_certificate_der: r.bytes("genesis.ca_certificate_der", MAX_CERT)?.to_vec(),
        })
    }
}

/// A certificate was issued to an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIssued {
    /// X.509 serial number bytes (big-endian, as in the certificate).
    pub serial: Vec<u8>,
    /// Integration the certificate was issued to.
    pub integration: String,
    /// Subject (e.g. the SAN URI or CN).
    pub subject: String,
    /// notBefore, Unix seconds.
    pub not_before: u64,
    /// notAfter, Unix seconds.
    pub not_after: u64,
    /// SHA-256 of the certified public key's SPKI.
    pub key_fingerprint: [u8; 32],
}

impl EventBody for CertificateIssued {
    const TAG: u16 = 2;

    fn encode_body(&self, w: &mut Writer) {
        w.bytes(&self.serial);
        w.str(&self.integration);
        w.str(&self.subject);
        w.u64(self.not_before);
        w.u64(self.not_after);
        w.fixed(&self.key_fingerprint);
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CertificateIssued {
            serial: r.bytes("certificate.serial", MAX_SERIAL)?.to_vec(),
            integration: r.str("certificate.integration", MAX_NAME)?.to_owned(),
            subject: r.str("certificate.subject", MAX_SUBJECT)?.to_owned(),
            not_before: r.u64("certificate.not_before")?,
            not_after: r.u64("certificate.not_after")?,
            key_fingerprint: r.hash("certificate.key_fingerprint")?,
        })
    }
}

/// A certificate was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial of the revoked certificate.
    pub serial: Vec<u8>,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
}

impl EventBody for Revoked {
    const TAG: u16 = 3;

    fn encode_body(&self, w: &mut Writer) {
        w.bytes(&self.serial);
        w.u8(self.reason);
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Revoked {
            serial: r.bytes("revoked.serial", MAX_SERIAL)?.to_vec(),
            reason: crl_reason(r, "revoked.reason")?,
        })
    }
}

/// Declares the `Event` enum and its tag/kind/encode/decode dispatch from one list, so a
/// new event type is one line here plus its struct.
macro_rules! events {
    ($($variant:ident => $kind:literal),+ $(,)?) => {
        /// Every state change of the appliance.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Event {
            $(
                #[doc = concat!("Event `", $kind, "`.")]
                $variant($variant),
            )+
        }

        impl Event {
            /// The event's `u16` type tag.
            pub fn tag(&self) -> u16 {
                match self {
                    $(Event::$variant(_) => $variant::TAG,)+
                }
            }

            /// Short stable name, for logs, metrics and audit output.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $kind,)+
                }
            }

            fn encode_body(&self, w: &mut Writer) {
                match self {
                    $(Event::$variant(e) => e.encode_body(w),)+
                }
            }

            fn decode_tagged(tag: u16, br: &mut Reader<'_>) -> Result<Self, DecodeError> {
                match tag {
                    $($variant::TAG => Ok(Event::$variant($variant::decode_body(br)?)),)+
                    tag => Err(DecodeError::UnknownTag {
                        field: "event.tag",
                        tag,
                    }),
                }
            }
        }
    };
}

events! {
    Genesis => "genesis",
    CertificateIssued => "certificate_issued",
    Revoked => "revoked",
    IntegrationRegistered => "integration_registered",
    IntegrationChanged => "integration_changed",
    EnrollmentCreated => "enrollment_created",
    EnrollmentUsed => "enrollment_used",
    OperatorCertIssued => "operator_cert_issued",
    TokenIssued => "token_issued",
    TokenRevoked => "token_revoked",
    ReuseDetected => "reuse_detected",
    ChangeRequested => "change_requested",
    AnomalyFlagged => "anomaly_flagged",
    KeyRotated => "key_rotated",
    OperatorRequested => "operator_requested",
    OperatorApproved => "operator_approved",
    MonitorTokenCreated => "monitor_token_created",
    MonitorTokenRevoked => "monitor_token_revoked",
    CaImported => "ca_imported",
    AcmeEabCreated => "acme_eab_created",
    AcmeAccountCreated => "acme_account_created",
    AcmeAccountChanged => "acme_account_changed",
}

impl Event {
    /// Writes `tag | body_len | body`.
    pub fn encode(&self, w: &mut Writer) {
        let mut body = Writer::new();
        self.encode_body(&mut body);
        w.u16(self.tag());
        w.bytes(&body.finish());
    }

    /// Reads `tag | body_len | body`; the body must be consumed exactly.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u16("event.tag")?;
        let body = r.bytes("event.body", MAX_EVENT_BODY)?;
        let mut br = Reader::new(body);
        let event = Self::decode_tagged(tag, &mut br)?;
        br.finish()?;
        Ok(event)
    }

    /// Checks the writer-side limits by a round trip through the decoder, which enforces
    /// every field's limit, so the store refuses an oversized field with a message naming
    /// it instead of writing bytes no verifier would accept.
    pub(crate) fn check_limits(&self) -> Result<(), DecodeError> {
        let mut w = Writer::new();
        self.encode(&mut w);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes);
        Self::decode(&mut r)?;
        r.finish()
    }
}
