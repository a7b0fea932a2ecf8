//! Ledger commits as the sequencer makes them: transaction time and commands per batch.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{histogram, LATENCY_BUCKETS};

/// Commands per transaction: 1 up to `sequencer::MAX_BATCH` (2048).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
];

/// Why a tiles publication run failed (`PublishError::kind`, a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TilesFailure {
    kind: &'static str,
}

/// A configured witness (names come from `[[witness]]`, so the label set is bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WitnessLabel {
    witness: String,
}

/// Why a witness gave no cosignature (`witness::submit::SubmitError::kind`, a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WitnessFailure {
    witness: String,
    kind: &'static str,
}

#[derive(Clone)]
pub struct LedgerMetrics {
    commit: Histogram,
    batch: Histogram,
    tiles_records: Gauge,
    tiles_failures: Family<TilesFailure, Counter>,
    witness_records: Family<WitnessLabel, Gauge>,
    witness_failures: Family<WitnessFailure, Counter>,
}

impl LedgerMetrics {
    pub(super) fn register(registry: &mut Registry) -> LedgerMetrics {
        let m = LedgerMetrics {
            commit: histogram(LATENCY_BUCKETS),
            batch: histogram(BATCH_BUCKETS),
            tiles_records: Gauge::default(),
            tiles_failures: Family::default(),
            witness_records: Family::default(),
            witness_failures: Family::default(),
        };
        registry.register(
            "witness_cosigned_records",
            "Tree size of the newest checkpoint each witness cosigned (lag: credmint_ledger_checkpoint_records minus this)",
            m.witness_records.clone(),
        );
        registry.register(
            "witness_failures",
            "Submissions to a witness that got no cosignature, by witness and kind (each is retried)",
            m.witness_failures.clone(),
        );
        registry.register(
            "tiles_published_records",
            "Records covered by the checkpoint in the tlog-tiles directory (0 while tiles are off)",
            m.tiles_records.clone(),
        );
        registry.register(
            "tiles_publish_failures",
            "tlog-tiles publication runs that failed, by kind (each is retried)",
            m.tiles_failures.clone(),
        );
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

    /// The tiles directory's checkpoint now covers `size` records.
    pub fn tiles_published(&self, size: u64) {
        self.tiles_records
            .set(i64::try_from(size).unwrap_or(i64::MAX));
    }

    /// One tiles publication run failed with `kind`.
    pub fn tiles_failed(&self, kind: &'static str) {
        self.tiles_failures
            .get_or_create(&TilesFailure { kind })
            .inc();
    }

    /// `witness` cosigned the checkpoint of `size` records.
    pub fn witness_cosigned(&self, witness: &str, size: u64) {
        let label = WitnessLabel {
            witness: witness.to_string(),
        };
        self.witness_records
            .get_or_create(&label)
            .set(i64::try_from(size).unwrap_or(i64::MAX));
    }

    /// A submission to `witness` failed with `kind`.
    pub fn witness_failed(&self, witness: &str, kind: &'static str) {
        let label = WitnessFailure {
            witness: witness.to_string(),
            kind,
        };
        self.witness_failures.get_or_create(&label).inc();
    }

    /// Records one committed transaction of `commands` commands.
    pub fn committed(&self, commands: usize, took: Duration) {
        self.commit.observe(took.as_secs_f64());
        self.batch.observe(commands as f64);
    }
}
