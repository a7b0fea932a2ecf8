//! The appliance's health, one reading for `/healthz` and the console alike: the HSM
//! supervisor's last word and whether the ledger takes writes. Never calls the HSM, so an
//! anonymous health check costs no HSM session.

use std::time::Duration;

use crate::app::AppState;

/// What `/healthz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// `Err(kind)`: why the HSM is unusable (the fault's kind, `probe_pending` before the
    /// first probe, `probe_stale` when the prober is stuck inside the HSM).
    pub hsm: Result<(), &'static str>,
    /// False from a write that failed in storage (disk full) until the next durable
    /// commit; the sequencer reopens the file and probes it meanwhile.
    pub ledger_writable: bool,
    pub ledger_size: u64,
    /// Time since the last HSM probe or reconnection attempt finished.
    pub last_probe_age: Option<Duration>,
}

impl Health {
    /// Usable: the HSM signs and the ledger takes writes.
    pub fn ok(&self) -> bool {
        self.hsm.is_ok() && self.ledger_writable
    }

    pub fn hsm_state(&self) -> &'static str {
        self.hsm.err().unwrap_or("ok")
    }

    pub fn ledger_state(&self) -> &'static str {
        if self.ledger_writable {
            "ok"
        } else {
            "unavailable"
        }
    }
}

/// Reads the supervisor's state (`Hsm::unavailable` during an outage, else the last
/// background probe). A probe result older than two intervals past the one due counts as
/// degraded.
pub fn check(state: &AppState) -> Health {
    let probe = state.hsm.last_probe();
    let hsm = match (state.hsm.unavailable(), probe) {
        (Some(down), _) => Err(down.cause()),
        (None, None) => Err("probe_pending"),
        (None, Some(p)) if p.is_stale() => Err("probe_stale"),
        (None, Some(p)) => p.result,
    };
    Health {
        hsm,
        ledger_writable: state.ledger.writable(),
        ledger_size: state.ledger.size(),
        last_probe_age: probe.map(|p| p.at.elapsed()),
    }
}
