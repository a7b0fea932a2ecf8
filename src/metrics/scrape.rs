//! Gauges read from the appliance at scrape time: cheaper than tracking every change, and
//! never stale. Series of a CA generation that stopped answering status disappear.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::app::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Generation {
    /// 0 for the genesis CA, N after the N-th CA rotation.
    ca_generation: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
    /// `<arch>-<os>` the binary was built for.
    target: String,
}

pub(super) struct ScrapeGauges {
    ledger_records: Gauge,
    checkpoint_records: Gauge,
    checkpoint_age: Gauge,
    queued: Gauge,
    queue_capacity: Gauge,
    hsm_available: Gauge,
    crl_age: Family<Generation, Gauge>,
    ca_expiry: Family<Generation, Gauge>,
    server_expiry: Gauge,
}

impl ScrapeGauges {
    pub(super) fn register(registry: &mut Registry) -> ScrapeGauges {
        let g = ScrapeGauges {
            ledger_records: Gauge::default(),
            checkpoint_records: Gauge::default(),
            checkpoint_age: Gauge::default(),
            queued: Gauge::default(),
            queue_capacity: Gauge::default(),
            hsm_available: Gauge::default(),
            crl_age: Family::default(),
            ca_expiry: Family::default(),
            server_expiry: Gauge::default(),
        };
        registry.register(
            "ledger_records",
            "Records in the ledger",
            g.ledger_records.clone(),
        );
        registry.register(
            "ledger_checkpoint_records",
            "Records covered by the latest signed checkpoint",
            g.checkpoint_records.clone(),
        );
        registry.register_with_unit(
            "ledger_checkpoint_age",
            "Seconds since the latest checkpoint was signed (or loaded at start); a checkpoint is signed only when the ledger grew",
            Unit::Seconds,
            g.checkpoint_age.clone(),
        );
        registry.register(
            "sequencer_queued_commands",
            "Commands waiting for the sequencer (queue depth)",
            g.queued.clone(),
        );
        registry.register(
            "sequencer_queue_capacity_commands",
            "Commands the sequencer queue holds before callers get 503",
            g.queue_capacity.clone(),
        );
        registry.register(
            "hsm_available",
            "1 while the HSM answers, 0 while the appliance reconnects",
            g.hsm_available.clone(),
        );
        registry.register_with_unit(
            "crl_age",
            "Seconds since thisUpdate of the cached CRL, by CA generation",
            Unit::Seconds,
            g.crl_age.clone(),
        );
        registry.register_with_unit(
            "ca_certificate_expiry_timestamp",
            "notAfter of each CA certificate still answering status, Unix time",
            Unit::Seconds,
            g.ca_expiry.clone(),
        );
        registry.register_with_unit(
            "server_certificate_expiry_timestamp",
            "notAfter of the HTTPS server certificate on disk, Unix time",
            Unit::Seconds,
            g.server_expiry.clone(),
        );
        registry.register(
            "build",
            "Version and target of the running binary (value 1)",
            Info::new(Build {
                version: env!("CARGO_PKG_VERSION"),
                target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            }),
        );
        g
    }

    pub(super) fn refresh(&self, state: &AppState) {
        let now = state.clock.unix();
        self.ledger_records.set(signed(state.ledger.size()));
        let checkpoint = state.checkpoint_view();
        self.checkpoint_records
            .set(signed(checkpoint.as_ref().map_or(0, |c| c.size)));
        self.checkpoint_age.set(signed(
            checkpoint.map_or(0, |c| now.saturating_sub(c.published_at)),
        ));
        self.queued.set(signed(state.sequencer.queued() as u64));
        self.queue_capacity
            .set(signed(state.sequencer.capacity() as u64));
        self.hsm_available
            .set(i64::from(state.hsm.unavailable().is_none()));
        self.crl_age.clear();
        self.ca_expiry.clear();
        let active = state.keys.current();
        for ca in active.status_cas(now) {
            let label = Generation {
                ca_generation: ca.generation,
            };
            if let Ok(not_after) = crate::rotation::not_after(&ca.root.der) {
                self.ca_expiry.get_or_create(&label).set(signed(not_after));
            }
            if let Some(crl) = state.status.crl(ca.generation) {
                self.crl_age
                    .get_or_create(&label)
                    .set(signed(now.saturating_sub(crl.this_update)));
            }
        }
        if let Some(not_after) = server_not_after(state) {
            self.server_expiry.set(signed(not_after));
        }
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// notAfter of the first certificate in the server chain file (what the listener serves:
/// renewal writes the file, then reloads the listener from it).
fn server_not_after(state: &AppState) -> Option<u64> {
    let pem = std::fs::read(state.config.server_cert_path()).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    crate::rotation::not_after(&pem.contents).ok()
}
