//! Every Prometheus series the appliance exports, in one registry (`prometheus-client`).
//!
//! Handles live here; instrumented code holds a clone of the part it feeds and adds one
//! line at each site. Values that already exist elsewhere (ledger size, queue depth,
//! certificate expiries, CRL age) are read at scrape time ([`scrape`]) instead of being
//! kept up to date on every change. Labels are bounded and never carry values a client
//! chose: routes are patterns, errors are `kind()` categories, classes are enums.
//! Help texts of registered metrics get their final period from the registry; those of
//! the collectors ([`signals`], [`process`]) carry it themselves.

mod credentials;
mod hsm;
mod http;
mod ledger;
mod process;
mod scrape;
mod signals;
mod status;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use credentials::{Class, CredentialMetrics, Tallied};
pub use hsm::HsmMetrics;
pub use http::HttpMetrics;
pub use ledger::LedgerMetrics;
pub use status::{CacheLookups, OcspMetrics};

use crate::app::AppState;
use crate::signals::Signals;
use scrape::ScrapeGauges;

/// `Content-Type` of `GET /metrics` (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The registry and the handles instrumented code feeds; one per appliance, in `AppState`.
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub hsm: HsmMetrics,
    pub ledger: LedgerMetrics,
    pub credentials: CredentialMetrics,
    pub ocsp: OcspMetrics,
    pub status_json: CacheLookups,
    gauges: ScrapeGauges,
    /// One scrape at a time: gauges are refreshed and encoded as one snapshot.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every series. `hsm` is the HSM's own handles (it records into them from
    /// the first PKCS#11 call, before the appliance serves); `signals` is read at scrape.
    pub fn new(hsm: HsmMetrics, signals: Arc<Signals>) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let credmint = registry.sub_registry_with_prefix("credmint");
        let http = HttpMetrics::register(credmint);
        hsm.register(credmint);
        let ledger = LedgerMetrics::register(credmint);
        let credentials = CredentialMetrics::register(credmint);
        let ocsp = OcspMetrics::register(credmint);
        let status_json = status::register_status_json(credmint);
        let gauges = ScrapeGauges::register(credmint);
        credmint.register_collector(Box::new(signals::SignalCounters(signals)));
        // Process series keep their conventional unprefixed names (`process_*`).
        registry.register_collector(Box::new(process::ProcessCollector));
        Arc::new(Metrics {
            registry,
            http,
            hsm,
            ledger,
            credentials,
            ocsp,
            status_json,
            gauges,
            scrape: Mutex::new(()),
        })
    }

    /// The text exposition, with the scrape-time gauges read from `state` first.
    pub fn render(&self, state: &AppState) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.gauges.refresh(state);
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

/// A histogram with fixed bucket bounds.
fn histogram(buckets: &'static [f64]) -> Histogram {
    Histogram::new(buckets.iter().copied())
}

/// Runs `f` and records how long it took, in seconds, in `into`.
pub fn timed<R>(into: &Histogram, f: impl FnOnce() -> R) -> R {
    let started = Instant::now();
    let out = f();
    into.observe(started.elapsed().as_secs_f64());
    out
}

/// Latency buckets from 100 µs to 10 s (seconds).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
