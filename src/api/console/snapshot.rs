//! What the console shows, read from the same sources as the JSON API: the inventory rows
//! of `GET /v1/admin/integrations`, the requests of `/v1/admin/changes` and
//! `/v1/admin/operators/requests`, the ledger tail for signals, the published checkpoint
//! and `crate::health`. Read-only: nothing here writes or calls the HSM.

use credmint_ledger::note::Note;
use credmint_ledger::Event;

use crate::api::governance::differences;
use crate::api::{inventory, ApiError};
use crate::app::AppState;
use crate::health::Health;
use crate::registry::{LiveCredential, OperatorRequest, PendingChange, Registry};
use crate::signals::{kind_name, reuse_kind_name};
use crate::wire::InventoryEntry;

/// Days the expiry chart covers, today (UTC) first.
pub const DAYS: u64 = 7;
const DAY: u64 = 86_400;
/// Ledger records read, newest first, looking for signals: bounds the page's cost on a
/// long ledger (older signals are in the ledger export).
pub const SIGNAL_SCAN: u64 = 5_000;
/// Most signals listed.
pub const SIGNALS_SHOWN: usize = 20;

pub struct Snapshot {
    pub now: u64,
    /// Inventory rows, as the JSON inventory has them.
    pub inventory: Vec<InventoryEntry>,
    /// One entry per UTC day, today first, [`DAYS`] of them.
    pub expiries: Vec<Day>,
    /// Pending change requests, oldest first, with the fields each would change.
    pub changes: Vec<(PendingChange, Vec<String>)>,
    pub operator_requests: Vec<OperatorRequest>,
    /// Newest first.
    pub signals: Vec<Signal>,
    pub ledger: LedgerHealth,
    pub health: Health,
}

/// Live credentials whose validity ends on one UTC day (from now on, for today).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Day {
    /// Unix seconds of the day's midnight.
    pub start: u64,
    pub certificates: u64,
    pub tokens: u64,
}

impl Day {
    pub fn total(&self) -> u64 {
        self.certificates + self.tokens
    }
}

/// An `anomaly-flagged` or `reuse-detected` ledger event.
pub struct Signal {
    pub index: u64,
    /// Unix seconds of the append.
    pub at: u64,
    pub kind: &'static str,
    pub integration: String,
    pub detail: String,
}

pub struct LedgerHealth {
    pub size: u64,
    pub checkpoint: Option<CheckpointHealth>,
}

pub struct CheckpointHealth {
    pub size: u64,
    /// Seconds since this process signed it (or loaded it at start-up).
    pub age_secs: u64,
    /// Key IDs (8 hex digits, as in the note's signature lines) that signed it.
    pub key_ids: Vec<String>,
}

impl Snapshot {
    /// Reads everything once; blocking (redb), so callers run it off the async runtime.
    pub fn read(state: &AppState) -> Result<Snapshot, ApiError> {
        let now = state.clock.unix();
        let registry = Registry::open(&state.ledger)?;
        Ok(Snapshot {
            now,
            inventory: inventory::rows(state, &registry)?,
            expiries: expiries(&registry, now)?,
            changes: pending_changes(&registry)?,
            operator_requests: registry.operator_requests()?,
            signals: recent_signals(state)?,
            ledger: ledger_health(state, now),
            health: crate::health::check(state),
        })
    }
}

fn pending_changes(registry: &Registry) -> Result<Vec<(PendingChange, Vec<String>)>, ApiError> {
    let mut out = Vec::new();
    for p in registry.pending_changes()? {
        let fields = registry
            .integration(&p.integration)?
            .map(|current| differences(&current, &p.proposed))
            .unwrap_or_default();
        out.push((p, fields));
    }
    Ok(out)
}

/// Live credentials of every integration by the UTC day their validity ends.
fn expiries(registry: &Registry, now: u64) -> Result<Vec<Day>, ApiError> {
    let today = now - now % DAY;
    let mut days: Vec<Day> = (0..DAYS)
        .map(|d| Day {
            start: today + d * DAY,
            ..Day::default()
        })
        .collect();
    for spec in registry.integrations()? {
        for (not_after, credential) in registry.expiring(&spec.name, now, today + DAYS * DAY)? {
            let day = &mut days[((not_after - today) / DAY) as usize];
            match credential {
                LiveCredential::Certificate(_) => day.certificates += 1,
                LiveCredential::Token(_) => day.tokens += 1,
            }
        }
    }
    Ok(days)
}

/// Signal events among the last [`SIGNAL_SCAN`] records, newest first.
fn recent_signals(state: &AppState) -> Result<Vec<Signal>, ApiError> {
    let from = state.ledger.size().saturating_sub(SIGNAL_SCAN);
    let mut out = Vec::new();
    for raw in state.ledger.records(from)? {
        let record = raw?
            .decode()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let (kind, integration, detail) = match record.event {
            Event::AnomalyFlagged(a) => (kind_name(a.kind), a.integration, a.detail),
            Event::ReuseDetected(r) => (reuse_kind_name(r.kind), r.integration, r.detail),
            _ => continue,
        };
        out.push(Signal {
            index: record.index,
            at: record.timestamp_ms / 1000,
            kind,
            integration,
            detail,
        });
    }
    out.reverse();
    out.truncate(SIGNALS_SHOWN);
    Ok(out)
}

fn ledger_health(state: &AppState, now: u64) -> LedgerHealth {
    let checkpoint = state.checkpoint_view().map(|view| CheckpointHealth {
        size: view.size,
        age_secs: now.saturating_sub(view.published_at),
        key_ids: Note::parse(&view.note)
            .map(|n| {
                n.signatures
                    .iter()
                    .map(|s| format!("{:08x}", s.key_id))
                    .collect()
            })
            .unwrap_or_default(),
    });
    LedgerHealth {
        size: state.ledger.size(),
        checkpoint,
    }
}
