//! `credmint agent` against a real appliance (SoftHSM token, redb ledger, HTTPS on
//! 127.0.0.1): enrollment, renewal across appliance restarts and outages, reaction to
//! revocation and suspension, job mode; the files it writes are checked with openssl.
//! The appliance side of the agent's protocol (`GET /v1/self`, renewal of a certificate
//! revoked as `superseded` or just expired) is tested here too.

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod job;
mod pkcs11;
mod reload;
mod renewal;
mod standing;
#[path = "../issuance/support.rs"]
mod support;
mod workload_api;
