//! After-commit effects. The sequencer runs them itself, on its own thread, after the
//! batch is durable and before any caller of the batch is answered: a caller that goes
//! away (disconnect, stream reset, shutdown) cannot leave a committed revocation with a
//! cached "good", or a committed rotation with the old key in use.

use std::net::IpAddr;

use credmint_ledger::event::AnomalyKind;

use super::command::{Command, KeySwap, SequenceError};
use crate::metrics::{Class, Tallied};

/// One effect of a committed command.
#[derive(Debug)]
pub enum Effect {
    /// This certificate is revoked: no cache may answer "good" for it any more.
    Revoked(Vec<u8>),
    /// This token is revoked: the same for its JSON status.
    TokenRevoked(String),
    /// State relying parties read changed: sign a checkpoint soon.
    Checkpoint,
    /// A credential was issued to `integration` (signal evaluation).
    Issued {
        integration: String,
        peer: Option<IpAddr>,
        /// The integration's last issuance (or registration) before this one.
        previous_activity: Option<u64>,
    },
    /// An anomaly event was committed (counters).
    Flagged {
        kind: AnomalyKind,
        auto_suspended: bool,
    },
    /// A key rotation committed: the new key signs from now on.
    SwapKeys(KeySwap),
    /// A credential was issued or revoked (counters by class).
    Tally(Tallied, Class),
}

/// What the rest of the appliance does when the sequencer commits. Implemented by the
/// serving wiring (status caches, checkpointer, signals), by tests with counters.
/// Every method runs on the sequencer thread and must not block for long.
pub trait AfterCommit: Send + Sync {
    /// Drops cached status answers (OCSP, JSON, CRL) for these serials.
    fn revoked(&self, serials: &[Vec<u8>]);
    /// Drops cached status answers for these tokens.
    fn tokens_revoked(&self, jtis: &[String]);
    /// Asks for a checkpoint soon.
    fn checkpoint_due(&self);
    /// Evaluates signals after an issuance; returns commands (signal events) to sequence
    /// next.
    fn issued(&self, issued: Issued<'_>) -> Vec<Command>;
    /// Counts a committed anomaly event.
    fn flagged(&self, kind: AnomalyKind, auto_suspended: bool);
    /// A command of the sequencer's own (a signal event) was not committed.
    fn dropped(&self, error: &SequenceError);
    /// One write transaction of `commands` commands committed in `took`.
    fn committed(&self, _commands: usize, _took: std::time::Duration) {}
    /// A committed command issued or revoked one credential of `class`.
    fn tally(&self, _what: Tallied, _class: Class) {}
}

/// One committed issuance, as the signals see it.
#[derive(Debug, Clone, Copy)]
pub struct Issued<'a> {
    pub integration: &'a str,
    pub peer: Option<IpAddr>,
    pub previous_activity: Option<u64>,
    pub now: u64,
}

/// Does nothing: for tools that append without serving (bench seeding, tests).
pub struct NoEffects;

impl AfterCommit for NoEffects {
    fn revoked(&self, _: &[Vec<u8>]) {}
    fn tokens_revoked(&self, _: &[String]) {}
    fn checkpoint_due(&self) {}
    fn issued(&self, _: Issued<'_>) -> Vec<Command> {
        Vec::new()
    }
    fn flagged(&self, _: AnomalyKind, _: bool) {}
    fn dropped(&self, _: &SequenceError) {}
}

/// Runs the effects of one committed batch, in order; returns follow-up commands.
pub fn run(hooks: &dyn AfterCommit, effects: Vec<Effect>, now: u64) -> Vec<Command> {
    let mut revoked = Vec::new();
    let mut revoked_tokens = Vec::new();
    let mut checkpoint = false;
    let mut follow_ups = Vec::new();
    for effect in effects {
        match effect {
            Effect::Revoked(serial) => revoked.push(serial),
            Effect::TokenRevoked(jti) => revoked_tokens.push(jti),
            Effect::Checkpoint => checkpoint = true,
            Effect::Issued {
                integration,
                peer,
                previous_activity,
            } => follow_ups.extend(hooks.issued(Issued {
                integration: &integration,
                peer,
                previous_activity,
                now,
            })),
            Effect::Flagged {
                kind,
                auto_suspended,
            } => hooks.flagged(kind, auto_suspended),
            Effect::Tally(what, class) => hooks.tally(what, class),
            Effect::SwapKeys(KeySwap(swap)) => {
                if let Err(e) = swap(now) {
                    // The rotation is durable; the ledger is the truth and a restart
                    // loads the new key from it. Say so loudly.
                    tracing::error!(error = %e, "committed key rotation could not be applied in memory; restart the appliance");
                }
            }
        }
    }
    // Caches first: once a caller hears "revoked", no status channel may say "good".
    if !revoked.is_empty() {
        hooks.revoked(&revoked);
    }
    if !revoked_tokens.is_empty() {
        hooks.tokens_revoked(&revoked_tokens);
    }
    if checkpoint {
        hooks.checkpoint_due();
    }
    follow_ups
}
