//! HSM signing latency, failures by kind and session-pool waits. Owned by `Hsm` (it
//! records from its first call) and registered when the appliance serves.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{histogram, LATENCY_BUCKETS};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

/// Cheap to clone: every clone records into the same series.
#[derive(Clone)]
pub struct HsmMetrics {
    /// One `C_Sign` (including a re-find of a stale key handle), in seconds.
    pub sign: Histogram,
    /// Time spent getting a pooled session (waiting for a free one included), in seconds.
    pub pool_wait: Histogram,
    errors: Family<Kind, Counter>,
}

impl Default for HsmMetrics {
    fn default() -> Self {
        HsmMetrics {
            sign: histogram(LATENCY_BUCKETS),
            pool_wait: histogram(LATENCY_BUCKETS),
            errors: Family::default(),
        }
    }
}

impl HsmMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "hsm_sign_duration",
            "Time of one HSM signature (C_Sign)",
            Unit::Seconds,
            self.sign.clone(),
        );
        registry.register_with_unit(
            "hsm_session_wait_duration",
            "Time to obtain a pooled PKCS#11 session, waiting included",
            Unit::Seconds,
            self.pool_wait.clone(),
        );
        registry.register(
            "hsm_errors",
            "Failed HSM calls, health probes and reconnection attempts, by error kind",
            self.errors.clone(),
        );
    }

    /// Counts one failed HSM call; `kind` is an `HsmError::kind()`.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&Kind { kind }).inc();
    }
}
