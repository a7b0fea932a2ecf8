//! Shared state handed to every request handler (cheap to clone).

use std::sync::{Arc, RwLock};

use credmint_ledger::Ledger;

use crate::checkpointer::CheckpointSignal;
use crate::clock::Clock;
use crate::config::Config;
use crate::hsm::Admission;
use crate::hsm::Hsm;
use crate::metrics::{Class, Metrics, Tallied};
use crate::sequencer::{AfterCommit, Command, Issued, SequenceError, Sequencer};
use crate::signals::{Signals, SignalsConfig};
use crate::status::cache::StatusCache;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub hsm: Arc<Hsm>,
    /// The keys in force and the retired ones still needed; swapped by a rotation. Take
    /// one `keys.current()` snapshot per operation (key, CA certificate and kid agree).
    pub keys: crate::rotation::LiveKeys,
    pub ledger: Arc<Ledger>,
    /// The only way to change the ledger: typed commands, committed with their effects.
    pub sequencer: Sequencer,
    /// Bounds signatures in flight in front of `C_Sign`.
    pub admission: Admission,
    pub clock: Clock,
    /// Base URL relying parties reach this appliance at (OCSP, CRL, JWKS, token `iss`).
    pub public_url: Arc<str>,
    /// Base URL of OCSP and CRLs in issued certificates (`Config::status_url`).
    pub status_url: Arc<str>,
    pub signals: Arc<Signals>,
    pub status: Arc<StatusCache>,
    /// Every Prometheus series (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// Latest signed checkpoint: answered from memory, never signed per request.
    pub checkpoint: Arc<RwLock<Option<CheckpointView>>>,
    pub checkpoints: Arc<CheckpointSignal>,
    /// The ACME server's nonces, orders and authorizations (`acme`).
    pub acme: Arc<crate::acme::Acme>,
    /// The newest checkpoint with witness cosignatures (`witness`).
    pub cosigned: crate::witness::CosignedSlot,
}

impl AppState {
    /// The part of the state issuance needs.
    pub fn issuer(&self) -> crate::issuance::Issuer {
        crate::issuance::Issuer {
            keys: self.keys.clone(),
            sequencer: self.sequencer.clone(),
            admission: self.admission.clone(),
            clock: self.clock.clone(),
            public_url: self.public_url.clone(),
            status_url: self.status_url.clone(),
            ledger_origin: self.ledger.origin().to_string(),
        }
    }

    pub fn latest_checkpoint(&self) -> Option<String> {
        self.checkpoint_view().map(|c| c.note)
    }

    pub fn checkpoint_view(&self) -> Option<CheckpointView> {
        self.checkpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Size of the published checkpoint, without copying its note (the JSON status hot
    /// path compares it with cached answers).
    pub fn checkpoint_size(&self) -> Option<u64> {
        self.checkpoint
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.size)
    }

    /// Publishes `note` unless a larger checkpoint is already published: signers run
    /// concurrently (schedule, export, rotation) and readers must never see the tree shrink.
    pub fn set_checkpoint(&self, note: String) {
        if let Some(view) = CheckpointView::parse(note, self.clock.unix()) {
            let mut current = self.checkpoint.write().unwrap_or_else(|p| p.into_inner());
            // The same note again (re-signing an unchanged size) keeps its first time.
            let fresh = current.as_ref().is_none_or(|c| c.note != view.note);
            if fresh && current.as_ref().is_none_or(|c| view.size >= c.size) {
                *current = Some(view);
            }
        }
    }

    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.status_url)
    }

    /// The CRL URL of the current CA generation (`/crl`, or `/crl/rN` after a rotation).
    pub fn crl_url(&self) -> String {
        self.keys.current().crl_url().to_string()
    }
}

/// A signed checkpoint with its size and root parsed once.
#[derive(Debug, Clone)]
pub struct CheckpointView {
    pub note: String,
    pub size: u64,
    pub root: [u8; 32],
    /// Unix seconds when this process signed it (or loaded it at start-up): the note
    /// itself carries no time.
    pub published_at: u64,
}

impl CheckpointView {
    /// Parses the checkpoint body (text before the blank line) of a note we signed.
    pub fn parse(note: String, published_at: u64) -> Option<CheckpointView> {
        let body_end = note.find("\n\n")? + 1;
        let cp = credmint_ledger::Checkpoint::parse_body(&note[..body_end]).ok()?;
        Some(CheckpointView {
            size: cp.size,
            root: cp.root,
            published_at,
            note,
        })
    }
}

/// What a commit does to the rest of the serving appliance; the sequencer runs it on its
/// own thread before answering (see `sequencer::effects`).
pub struct AppEffects {
    pub status: Arc<StatusCache>,
    pub checkpoints: Arc<CheckpointSignal>,
    pub signals: Arc<Signals>,
    pub config: SignalsConfig,
    pub metrics: Arc<Metrics>,
}

impl AfterCommit for AppEffects {
    fn revoked(&self, serials: &[Vec<u8>]) {
        self.status.invalidate(serials);
    }

    fn tokens_revoked(&self, jtis: &[String]) {
        self.status.invalidate_tokens(jtis);
    }

    fn checkpoint_due(&self) {
        self.checkpoints.wake();
    }

    fn issued(&self, issued: Issued<'_>) -> Vec<Command> {
        crate::signals::after_issuance(&self.signals, &self.config, issued)
    }

    fn flagged(&self, kind: credmint_ledger::event::AnomalyKind, auto_suspended: bool) {
        self.signals.committed(kind, auto_suspended);
    }

    fn committed(&self, commands: usize, took: std::time::Duration) {
        self.metrics.ledger.committed(commands, took);
    }

    fn tally(&self, what: Tallied, class: Class) {
        self.metrics.credentials.tally(what, class);
    }

    fn dropped(&self, error: &SequenceError) {
        self.signals.write_failed();
        tracing::error!(%error, "could not record a signal event");
    }
}
