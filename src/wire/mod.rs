//! The HTTP API's request and response bodies, once: the handlers in `crate::api` build
//! and read them, the CLI sends and reads the same structs (request structs double as the
//! verbs' flags, so a field's doc comment is both its `--help` text and its description in
//! the OpenAPI document), and `crate::api::openapi` derives the schemas from them.
//!
//! Request fields the server insists on are `Option` here on purpose: a missing one is
//! refused by the validation with `invalid_field` naming it, not by serde with a generic
//! message. Nothing in this module decides anything; rules live in `crate::registry`,
//! `crate::governance` and `crate::policy`.

mod credentials;
mod governance;
mod integration;
mod monitors;
mod operators;
mod system;

pub use credentials::{
    CertRequest, CertificateStatus, EnrollmentRequest, EnrollmentToken, Evidence,
    IntegrationRevoked, IssuedToken, PresentedCertificate, Revoked, SelfRevoke, Standing,
    StatusName, TokenRequest, TokenStatus, WorkloadSelf,
};
pub use governance::{
    ApprovalBody, ChangeApplied, ChangeApproved, ChangeBody, ChangeList, ChangeOutcome,
    ChangeRequested, ChangeState, ChangeStatus, ChangeUnchanged, ClosedChange, DecommissionBody,
    Decommissioned, PendingChange, RecertifyBody,
};
pub use integration::{
    Class, IntegrationUpdate, IntegrationView, Inventory, InventoryEntry, Lifecycle, Registration,
    ReviewStateName,
};
pub use monitors::{MonitorGrant, MonitorList, MonitorToken, MonitorView, MonitorWithdrawn};
pub use operators::{
    AddOperator, ApproveOperator, OperatorPending, OperatorRequestView, OperatorRequests,
};
pub use system::{ErrorBody, Health, Jwk, Jwks, KeyRef, ReasonBody, Rotated};
