//! Key rotation end to end over real HTTPS on a real SoftHSM token: CA, token and ledger
//! keys; credentials from before and after verify during overlap; OCSP/CRL keep working;
//! the ledger verifies across rotations with only the genesis key pinned; restarts keep
//! the rotated keys.

mod ca;
#[path = "../common/mod.rs"]
mod common;
mod intermediate;
mod ledger;
#[path = "../issuance/support.rs"]
mod support;
mod token;
mod util;
