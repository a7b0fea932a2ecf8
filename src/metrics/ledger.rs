//! Ledger commits as the sequencer makes them: transaction time and commands per batch.

use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{histogram, LATENCY_BUCKETS};

/// Commands per transaction: 1 up to `sequencer::MAX_BATCH` (2048).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];

#[derive(Clone)]
pub struct LedgerMetrics {
    commit: Histogram,
    batch: Histogram,
}

impl LedgerMetrics {
    pub(super) fn register(registry: &mut Registry) -> LedgerMetrics {
        let m = LedgerMetrics {
            commit: histogram(LATENCY_BUCKETS),
            batch: histogram(BATCH_BUCKETS),
        };
        registry.register_with_unit(
            "ledger_commit_duration",
            "Time of one ledger write transaction (append, projections, fsync)",
            Unit::Seconds,
            m.commit.clone(),
        );
        registry.register(
            "ledger_batch_commands",
            "Commands committed together in one ledger transaction",
            m.batch.clone(),
        );
        m
    }

    /// Records one committed transaction of `commands` commands.
    pub fn committed(&self, commands: usize, took: Duration) {
        self.commit.observe(took.as_secs_f64());
        self.batch.observe(commands as f64);
    }
}
