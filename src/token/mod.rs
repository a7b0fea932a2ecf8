//! Workload JWTs and the JWKS that verifies them, built by hand so the signing key stays in
//! the HSM: a JWT library would want the private key, credmint only has a `sign` callback.
//!
//! Pure builders. Which claims a token carries is decided by policy; the key that signs is
//! passed in as a closure; publishing the JWKS is the API's job. Nothing here verifies
//! tokens: relying parties do that with any standard JOSE library (the tests use one).

pub mod jwks;
pub mod jwt;

pub use jwks::{jwk, jwks, thumbprint_kid, JwkError};
pub use jwt::{sign_jwt, JwsAlg, TokenClaims};
