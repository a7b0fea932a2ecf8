//! Foundation: key custody in a real SoftHSM2 token, init, HSM error reporting, and the
//! HTTPS listener, checked with pkcs11-tool, openssl, rustls and independent verifiers.

mod common;
mod custody;
mod errors;
mod serve;
