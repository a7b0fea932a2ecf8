//! Revocation and relying-party status over real HTTPS: revoke (operator, integration-wide,
//! self), JSON status with ledger proofs, OCSP and CRL checked by openssl, reuse signals.

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod disconnect;
mod hsm_outage;
mod http_status;
mod json_cache;
mod ocsp_crl;
mod plain_http;
mod revoke;
mod status_refresh;
#[path = "../issuance/support.rs"]
mod support;
