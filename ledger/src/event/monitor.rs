//! Read-only monitoring access: an operator grants a named bearer token that may scrape
//! `/metrics` and read the inventory but change nothing. Granting and withdrawing read
//! access is a governance change, so both are ledger events an auditor can see; only the
//! token's SHA-256 is recorded, never the token.

use super::{EventBody, MAX_NAME};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// An operator created monitoring token `name`; requests presenting the token whose
/// SHA-256 is `token_hash` read as this monitor until `expires_at` or a later
/// [`MonitorTokenRevoked`] naming the same hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorTokenCreated {
    /// Label of the scraper (for example `prometheus`); at most one live token per name.
    pub name: String,
    /// SHA-256 of the token string.
    pub token_hash: [u8; 32],
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

impl EventBody for MonitorTokenCreated {
    const TAG: u16 = 17;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.name);
        w.fixed(&self.token_hash);
        w.u64(self.expires_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MonitorTokenCreated {
            name: r.non_empty_str("monitor.name", MAX_NAME)?.to_owned(),
            token_hash: r.hash("monitor.token_hash")?,
            expires_at: r.u64("monitor.expires_at")?,
        })
    }
}

/// An operator withdrew monitoring token `name` (the one with `token_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorTokenRevoked {
    pub name: String,
    /// SHA-256 of the withdrawn token: names exactly which grant ends, so a token
    /// re-created under the same name later is not touched by an old withdrawal.
    pub token_hash: [u8; 32],
}

impl EventBody for MonitorTokenRevoked {
    const TAG: u16 = 18;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.name);
        w.fixed(&self.token_hash);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MonitorTokenRevoked {
            name: r.non_empty_str("monitor.name", MAX_NAME)?.to_owned(),
            token_hash: r.hash("monitor.token_hash")?,
        })
    }
}
