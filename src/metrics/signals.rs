//! The misuse and anomaly counters of `crate::signals`, read at scrape time (the signals
//! keep their own atomics: they also decide rate limits from them).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use crate::signals::{kind_name, Signals, KINDS};

pub(super) struct SignalCounters(pub Arc<Signals>);

impl std::fmt::Debug for SignalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalCounters")
    }
}

impl Collector for SignalCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.counts();
        for (name, help, by_kind) in [
            (
                "signals",
                "Anomaly signals recorded, by kind.",
                counts.fired,
            ),
            (
                "signals_suppressed",
                "Signals not recorded because of the cooldown, by kind.",
                counts.suppressed,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (kind, value) in KINDS.iter().zip(by_kind) {
                let labels = [("kind", kind_name(*kind))];
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, value) in [
            (
                "auto_suspensions",
                "Integrations suspended automatically on a volume spike.",
                counts.auto_suspensions,
            ),
            (
                "signal_write_failures",
                "Signal events that could not be written to the ledger.",
                counts.write_failures,
            ),
            (
                "reuse_presentations",
                "Presentations of spent, revoked or expired credentials.",
                counts.reuse,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}
