//! Foundation: key custody in a real SoftHSM2 token, init, HSM error reporting, and the
//! HTTPS listener, checked with pkcs11-tool, openssl, rustls and independent verifiers.

mod bench_seed;
#[path = "../common/mod.rs"]
mod common;
mod container;
mod custody;
mod data_dir;
mod errors;
mod flood;
mod health;
mod serve;
mod systemd;
mod token_recovery;
