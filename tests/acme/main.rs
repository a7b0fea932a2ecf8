//! The ACME server (RFC 8555) against clients nobody here wrote, certbot and lego from
//! Debian, over a real HTTPS listener, SoftHSM token and redb ledger; refusals and the
//! protocol details those clients do not exercise (ARI, key change, deactivation) through
//! a small JWS client in `harness`.

#[path = "../common/mod.rs"]
mod common;
mod harness;
mod knot;
#[path = "../issuance/support.rs"]
#[allow(dead_code)]
mod support;

mod certbot;
mod dns;
mod lego;
mod protocol;
mod refusals;
