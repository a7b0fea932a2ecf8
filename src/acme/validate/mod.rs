//! Challenge validation (RFC 8555 §8): proving that the account's holder controls an
//! identifier, by a web server answering on it (`http01`) or by a TXT record under it
//! (`dns01`). A validation changes only in-memory authorizations, never the ledger.

pub mod dns01;
pub mod http01;

/// Why a validation failed: the ACME error type for the challenge and what was seen.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: &'static str,
    pub detail: String,
}

fn failure(kind: &'static str, detail: String) -> Failure {
    Failure { kind, detail }
}
