//! Shared state handed to every request handler (cheap to clone).

use std::sync::{Arc, RwLock};

use credmint_ledger::Ledger;

use crate::ca::RootCa;
use crate::config::Config;
use crate::hsm::Hsm;
use crate::keyset::KeySet;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub hsm: Arc<Hsm>,
    pub keys: KeySet,
    pub ca: Arc<RootCa>,
    pub ledger: Arc<Ledger>,
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
}
