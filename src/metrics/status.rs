//! OCSP: answers by response status (`tryLater` among them) and cache hits and misses.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    /// RFC 6960 OCSPResponseStatus name (`successful`, `tryLater`, ...).
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lookup {
    result: &'static str,
}

#[derive(Clone)]
pub struct OcspMetrics {
    responses: Family<Status, Counter>,
    cache: Family<Lookup, Counter>,
}

impl OcspMetrics {
    pub(super) fn register(registry: &mut Registry) -> OcspMetrics {
        let m = OcspMetrics {
            responses: Family::default(),
            cache: Family::default(),
        };
        registry.register(
            "ocsp_responses",
            "OCSP responses sent, by response status",
            m.responses.clone(),
        );
        registry.register(
            "ocsp_cache_lookups",
            "Cacheable OCSP requests (one CertID, no nonce), by result (hit, miss)",
            m.cache.clone(),
        );
        // Both results exist from the start, so a hit ratio is defined at once.
        for result in ["hit", "miss"] {
            drop(m.cache.get_or_create(&Lookup { result }));
        }
        m
    }

    pub fn response(&self, status: &'static str) {
        self.responses.get_or_create(&Status { status }).inc();
    }

    pub fn cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&Lookup { result }).inc();
    }
}
