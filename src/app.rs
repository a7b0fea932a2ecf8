//! Shared state handed to every request handler (cheap to clone).

use std::sync::{Arc, RwLock};

use credmint_ledger::Ledger;

use crate::ca::RootCa;
use crate::clock::Clock;
use crate::config::Config;
use crate::hsm::Hsm;
use crate::keyset::KeySet;
use crate::ledger_writer::LedgerWriter;
use crate::signals::Signals;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub hsm: Arc<Hsm>,
    pub keys: KeySet,
    pub ca: Arc<RootCa>,
    pub ledger: Arc<Ledger>,
    pub writer: LedgerWriter,
    pub clock: Clock,
    /// Base URL relying parties reach this appliance at (OCSP, CRL, JWKS, token `iss`).
    pub public_url: Arc<str>,
    /// JWK thumbprint of the token signing key, the JWS `kid`.
    pub token_kid: Arc<str>,
    pub signals: Arc<Signals>,
    /// Latest signed checkpoint note: answered from memory, never signed per request.
    pub checkpoint: Arc<RwLock<Option<String>>>,
}

impl AppState {
    pub fn latest_checkpoint(&self) -> Option<String> {
        self.checkpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_checkpoint(&self, note: String) {
        *self.checkpoint.write().unwrap_or_else(|p| p.into_inner()) = Some(note);
    }

    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.public_url)
    }

    pub fn crl_url(&self) -> String {
        format!("{}/crl", self.public_url)
    }
}
