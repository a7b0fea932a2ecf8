//! Revocation status for relying systems: JSON with ledger proofs, OCSP and CRL, all
//! answered from caches so a query costs no HSM signature in the steady state.

pub mod answers;
pub mod cache;
pub mod crl;
pub mod json;
pub mod ocsp;
pub mod receipt;
