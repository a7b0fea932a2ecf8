//! Ledger objects as the API shows them (the shapes are `crate::wire`).

use credmint_ledger::event::IntegrationSpec;

pub use crate::clock::rfc3339;
use crate::wire::IntegrationView;

/// An integration as the API shows it, with its SPIFFE ID under this appliance's trust domain.
pub fn integration_of(state: &crate::app::AppState, spec: &IntegrationSpec) -> IntegrationView {
    IntegrationView::new(spec, &state.config.identity.trust_domain)
}
