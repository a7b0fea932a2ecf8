//! `status.json`: what the agent serves and, when it serves nothing, why. Replaced
//! atomically on every change, for operators, health checks and the tests.

use std::path::PathBuf;

use serde::Serialize;

use super::credential::Held;
use crate::clock::rfc3339;

/// The agent's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No credential yet: waiting for an enrollment token (or for the appliance).
    Enrolling,
    /// Files delivered, renewal scheduled.
    Serving,
    /// The certificate expired before a renewal succeeded; still trying.
    Expired,
    /// Serving nothing, on purpose: revoked, suspended, decommissioned or refused.
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub phase: Phase,
    /// Why the agent is not serving, or the last failure while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_renewal: Option<String>,
    /// Certificates obtained by this process (enrollment and renewals).
    pub obtained: u64,
    pub updated_at: String,
}

pub struct Reporter {
    path: PathBuf,
    last: Option<Report>,
}

impl Reporter {
    pub fn new(path: PathBuf) -> Reporter {
        Reporter { path, last: None }
    }

    /// Records the phase; logs it when it changed (never a secret: serials and reasons).
    pub fn set(
        &mut self,
        phase: Phase,
        held: Option<&Held>,
        reason: Option<String>,
        next_renewal_ms: Option<u64>,
        obtained: u64,
        now_ms: u64,
    ) {
        let report = Report {
            phase,
            reason,
            serial: held.map(|h| h.serial.clone()),
            spiffe_id: held.and_then(|h| h.spiffe_id.clone()),
            not_after: held.map(|h| rfc3339(h.not_after_ms / 1000)),
            next_renewal: next_renewal_ms.map(|t| rfc3339(t / 1000)),
            obtained,
            updated_at: rfc3339(now_ms / 1000),
        };
        let changed = self.last.as_ref().is_none_or(|l| {
            l.phase != report.phase || l.reason != report.reason || l.serial != report.serial
        });
        if changed {
            match (&report.phase, &report.reason) {
                (Phase::Serving, None) => {
                    tracing::info!(serial = ?report.serial, not_after = ?report.not_after, next_renewal = ?report.next_renewal, "agent serving")
                }
                (phase, reason) => {
                    tracing::warn!(?phase, serial = ?report.serial, reason = reason.as_deref().unwrap_or(""), "agent state")
                }
            }
        }
        let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
        if let Err(e) = crate::fsutil::write_atomically(&self.path, &bytes, 0o644) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the agent status file");
        }
        self.last = Some(report);
    }
}
