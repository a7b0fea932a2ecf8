//! Workload issuance over real HTTPS: integrations, enrollment, certificates checked by
//! openssl and a rustls handshake, renewal, tokens checked by a JWT library, every refusal.

mod access_log;
mod cli;
#[path = "../common/mod.rs"]
mod common;
mod concurrency;
mod error_shape;
mod flow;
mod metrics;
mod openapi;
mod refusals;
mod support;
