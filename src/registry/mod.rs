//! Projections of the ledger: integrations, enrollment tokens, certificates, tokens and
//! operators, kept in redb tables beside the ledger and updated in the same write
//! transaction as the append. They can always be rebuilt from the ledger, and the status
//! and policy paths read them instead of scanning history.

mod apply;
mod live;
mod read;
pub mod schema;
mod validate;

pub use apply::{apply, rebuild_if_stale, ProjectionError};
pub use apply::{CHANGE_APPROVED, CHANGE_SUPERSEDED};
pub use live::LiveCredential;
pub use read::{
    AcmeAccountRow, AcmeEabRow, Activity, CertRow, CredentialKind, EnrollmentRow, MonitorRow,
    OperatorRequest, PendingChange, Registry, RevokedRow, TokenRow,
};
pub use validate::{
    check_audiences, check_dns, check_identifier, check_scope, class_cap, parse_class,
    parse_review_by, validate, FieldError, Registration,
};

/// Identity of an integration's state: SHA-256 of its canonical spec bytes. Changes name
/// the state they were decided on by it, and so do issuance grants.
pub fn spec_hash(spec: &credmint_ledger::event::IntegrationSpec) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(spec.to_bytes()).into()
}
