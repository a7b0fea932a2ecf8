//! Governance events: integrations (owned non-human identities), their changes,
//! enrollment tokens and operator certificates.

use super::policy::{PolicyExtensions, EXTENSIONS_FLAG};
use super::{EventBody, MAX_NAME, MAX_SERIAL};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Maximum number of scopes or DNS names on an integration.
pub const MAX_LIST: usize = 256;
/// Maximum length of free text (purpose, reasons, details).
pub const MAX_TEXT: usize = 4096;

/// Privilege class: a credential that can create, delete, export or impersonate is privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivilegeClass {
    Routine,
    Privileged,
}

/// Lifecycle status of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationStatus {
    Active,
    Suspended,
    Decommissioned,
}

fn class_to_u8(c: PrivilegeClass) -> u8 {
    match c {
        PrivilegeClass::Routine => 1,
        PrivilegeClass::Privileged => 2,
    }
}

fn status_to_u8(s: IntegrationStatus) -> u8 {
    match s {
        IntegrationStatus::Active => 1,
        IntegrationStatus::Suspended => 2,
        IntegrationStatus::Decommissioned => 3,
    }
}

/// The full governance record of an integration, as registered or after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationSpec {
    /// Unique name; also the last segment of the SPIFFE ID.
    pub name: String,
    pub business_owner: String,
    pub technical_owner: String,
    pub purpose: String,
    /// Environment or tenant; the middle segment of the SPIFFE ID.
    pub environment: String,
    /// Scopes tokens of this integration may carry.
    pub scopes: Vec<String>,
    pub privilege_class: PrivilegeClass,
    /// Longest TTL of any credential, seconds.
    pub max_ttl_secs: u64,
    /// Recertification deadline, Unix seconds; no issuance after it.
    pub review_by: u64,
    /// Ticket or change id that approved this state.
    pub approval_ref: String,
    /// Whether certificates may carry serverAuth.
    pub allow_server_auth: bool,
    /// DNS names certificates of this integration may carry.
    pub dns_names: Vec<String>,
    pub status: IntegrationStatus,
    /// Policy added after the first format version (FORMAT.md §3.4.1).
    pub policy: PolicyExtensions,
}

impl IntegrationSpec {
    /// Writes the spec (no tag, no length).
    pub fn encode(&self, w: &mut Writer) {
        w.str(&self.name);
        w.str(&self.business_owner);
        w.str(&self.technical_owner);
        w.str(&self.purpose);
        w.str(&self.environment);
        w.str_list(&self.scopes);
        w.u8(class_to_u8(self.privilege_class));
        w.u64(self.max_ttl_secs);
        w.u64(self.review_by);
        w.str(&self.approval_ref);
        w.bool(self.allow_server_auth);
        w.str_list(&self.dns_names);
        if self.policy.is_empty() {
            w.u8(status_to_u8(self.status));
        } else {
            w.u8(status_to_u8(self.status) | EXTENSIONS_FLAG);
            self.policy.encode(w);
        }
    }

    /// Reads a spec written by [`IntegrationSpec::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut spec = IntegrationSpec {
            name: r.non_empty_str("integration.name", MAX_NAME)?.to_owned(),
            business_owner: r.str("integration.business_owner", MAX_NAME)?.to_owned(),
            technical_owner: r.str("integration.technical_owner", MAX_NAME)?.to_owned(),
            purpose: r.str("integration.purpose", MAX_TEXT)?.to_owned(),
            environment: r.str("integration.environment", MAX_NAME)?.to_owned(),
            scopes: r.str_list("integration.scopes", MAX_LIST, MAX_NAME)?,
            privilege_class: match r.u8("integration.privilege_class")? {
                1 => PrivilegeClass::Routine,
                2 => PrivilegeClass::Privileged,
                _ => return Err(invalid("integration.privilege_class", "must be 1 or 2")),
            },
            max_ttl_secs: r.u64("integration.max_ttl_secs")?,
            review_by: r.u64("integration.review_by")?,
            approval_ref: r.str("integration.approval_ref", MAX_NAME)?.to_owned(),
            allow_server_auth: r.bool("integration.allow_server_auth")?,
            dns_names: r.str_list("integration.dns_names", MAX_LIST, MAX_NAME)?,
            status: IntegrationStatus::Active,
            policy: PolicyExtensions::default(),
        };
        let status = r.u8("integration.status")?;
        spec.status = match status & !EXTENSIONS_FLAG {
            1 => IntegrationStatus::Active,
            2 => IntegrationStatus::Suspended,
            3 => IntegrationStatus::Decommissioned,
            _ => return Err(invalid("integration.status", "must be 1, 2 or 3")),
        };
        if status & EXTENSIONS_FLAG != 0 {
            spec.policy = PolicyExtensions::decode(r)?;
        }
        Ok(spec)
    }

    /// Standalone canonical bytes (used by the appliance's projection table).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.finish()
    }

    /// Parses [`IntegrationSpec::to_bytes`] output, rejecting trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let spec = Self::decode(&mut r)?;
        r.finish()?;
        Ok(spec)
    }
}

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

/// A new integration was registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRegistered {
    pub spec: IntegrationSpec,
}

impl EventBody for IntegrationRegistered {
    const TAG: u16 = 4;
    fn encode_body(&self, w: &mut Writer) {
        self.spec.encode(w);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IntegrationRegistered {
            spec: IntegrationSpec::decode(r)?,
        })
    }
}

/// What kind of change an [`IntegrationChanged`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// Authority reduced (fewer scopes, shorter TTL, ...): applies at once.
    Narrowed,
    /// A pending increase of authority approved by a different operator.
    IncreaseApproved,
    /// Owner confirmed the integration is still needed; review-by moved.
    Recertified,
    Suspended,
    Resumed,
    /// Permanently retired; every live credential revoked.
    Decommissioned,
    /// Business or technical owner changed.
    OwnerChanged,
}

const CHANGE_KINDS: [ChangeKind; 7] = [
    ChangeKind::Narrowed,
    ChangeKind::IncreaseApproved,
    ChangeKind::Recertified,
    ChangeKind::Suspended,
    ChangeKind::Resumed,
    ChangeKind::Decommissioned,
    ChangeKind::OwnerChanged,
];

impl ChangeKind {
    /// Wire value, 1..=7 in declaration order.
    pub fn to_u8(self) -> u8 {
        CHANGE_KINDS.iter().position(|k| *k == self).unwrap_or(0) as u8 + 1
    }
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        CHANGE_KINDS
            .get(usize::from(v).wrapping_sub(1))
            .copied()
            .ok_or(invalid("change.kind", "unknown change kind"))
    }
}

/// An integration's governance record changed; `spec` is the state after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationChanged {
    pub kind: ChangeKind,
    pub spec: IntegrationSpec,
    /// Approval reference or reason given by the operator.
    pub reference: String,
    /// For `IncreaseApproved`: the index of the ledger record that requested it; else 0.
    pub request_index: u64,
}

impl EventBody for IntegrationChanged {
    const TAG: u16 = 5;
    fn encode_body(&self, w: &mut Writer) {
        w.u8(self.kind.to_u8());
        self.spec.encode(w);
        w.str(&self.reference);
        w.u64(self.request_index);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IntegrationChanged {
            kind: ChangeKind::from_u8(r.u8("change.kind")?)?,
            spec: IntegrationSpec::decode(r)?,
            reference: r.str("change.reference", MAX_TEXT)?.to_owned(),
            request_index: r.u64("change.request_index")?,
        })
    }
}

/// An operator created a one-time enrollment token; only its hash is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentCreated {
    pub integration: String,
    /// SHA-256 of the token string.
    pub token_hash: [u8; 32],
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

impl EventBody for EnrollmentCreated {
    const TAG: u16 = 6;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.integration);
        w.fixed(&self.token_hash);
        w.u64(self.expires_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EnrollmentCreated {
            integration: r
                .non_empty_str("enrollment.integration", MAX_NAME)?
                .to_owned(),
            token_hash: r.hash("enrollment.token_hash")?,
            expires_at: r.u64("enrollment.expires_at")?,
        })
    }
}

/// An enrollment token was spent on the certificate with `serial` (same batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUsed {
    pub integration: String,
    pub token_hash: [u8; 32],
    pub serial: Vec<u8>,
}

impl EventBody for EnrollmentUsed {
    const TAG: u16 = 7;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.integration);
        w.fixed(&self.token_hash);
        w.bytes(&self.serial);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EnrollmentUsed {
            integration: r
                .non_empty_str("enrollment.integration", MAX_NAME)?
                .to_owned(),
            token_hash: r.hash("enrollment.token_hash")?,
            serial: r.bytes("enrollment.serial", MAX_SERIAL)?.to_vec(),
        })
    }
}

/// An operator (admin) client certificate was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCertIssued {
    pub name: String,
    pub serial: Vec<u8>,
    pub not_after: u64,
    pub key_fingerprint: [u8; 32],
}

impl EventBody for OperatorCertIssued {
    const TAG: u16 = 8;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.name);
        w.bytes(&self.serial);
        w.u64(self.not_after);
        w.fixed(&self.key_fingerprint);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OperatorCertIssued {
            name: r.non_empty_str("operator.name", MAX_NAME)?.to_owned(),
            serial: r.bytes("operator.serial", MAX_SERIAL)?.to_vec(),
            not_after: r.u64("operator.not_after")?,
            key_fingerprint: r.hash("operator.key_fingerprint")?,
        })
    }
}

/// An operator asked for an increase of authority; it takes effect only when a different
/// operator approves it (an [`IntegrationChanged`] of kind `IncreaseApproved` whose
/// `request_index` is this record's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequested {
    /// The integration's complete proposed state.
    pub proposed: IntegrationSpec,
    pub reason: String,
}

impl EventBody for ChangeRequested {
    const TAG: u16 = 12;
    fn encode_body(&self, w: &mut Writer) {
        self.proposed.encode(w);
        w.str(&self.reason);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChangeRequested {
            proposed: IntegrationSpec::decode(r)?,
            reason: r.str("change_request.reason", MAX_TEXT)?.to_owned(),
        })
    }
}

/// Kinds of anomaly signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// Activity after a configurable dormant period.
    DormantToActive,
    /// Issuance rate far above the integration's own baseline.
    VolumeSpike,
    /// A request from a network the integration never used.
    NewSourceNetwork,
    /// An increase of authority was approved.
    PrivilegeExpansion,
}

impl AnomalyKind {
    pub fn to_u8(self) -> u8 {
        match self {
            AnomalyKind::DormantToActive => 1,
            AnomalyKind::VolumeSpike => 2,
            AnomalyKind::NewSourceNetwork => 3,
            AnomalyKind::PrivilegeExpansion => 4,
        }
    }
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(AnomalyKind::DormantToActive),
            2 => Ok(AnomalyKind::VolumeSpike),
            3 => Ok(AnomalyKind::NewSourceNetwork),
            4 => Ok(AnomalyKind::PrivilegeExpansion),
            _ => Err(invalid("anomaly.kind", "unknown anomaly kind")),
        }
    }
}

/// A monitoring signal about an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyFlagged {
    pub integration: String,
    pub kind: AnomalyKind,
    pub detail: String,
    /// True when policy suspended the integration because of this signal.
    pub auto_suspended: bool,
}

impl EventBody for AnomalyFlagged {
    const TAG: u16 = 13;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.integration);
        w.u8(self.kind.to_u8());
        w.str(&self.detail);
        w.bool(self.auto_suspended);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AnomalyFlagged {
            integration: r.non_empty_str("anomaly.integration", MAX_NAME)?.to_owned(),
            kind: AnomalyKind::from_u8(r.u8("anomaly.kind")?)?,
            detail: r.str("anomaly.detail", MAX_TEXT)?.to_owned(),
            auto_suspended: r.bool("anomaly.auto_suspended")?,
        })
    }
}
