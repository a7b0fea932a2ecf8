//! OCSP: answers by response status (`tryLater` among them) and cache hits and misses;
//! JSON status: cache hits and misses.

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

/// A cache's lookups by result, both results registered from the start so a hit ratio is
/// defined at once; the two counters are held, so a lookup costs no label hashing.
#[derive(Clone)]
pub struct CacheLookups {
    hit: Counter,
    miss: Counter,
}

impl CacheLookups {
    fn register(registry: &mut Registry, name: &str, help: &str) -> CacheLookups {
        let family = Family::<Lookup, Counter>::default();
        registry.register(name, help, family.clone());
        let hit = family.get_or_create(&Lookup { result: "hit" }).clone();
        let miss = family.get_or_create(&Lookup { result: "miss" }).clone();
        CacheLookups { hit, miss }
    }

    pub fn cache(&self, hit: bool) {
        if hit { &self.hit } else { &self.miss }.inc();
    }
}

#[derive(Clone)]
pub struct OcspMetrics {
    responses: Family<Status, Counter>,
    cache: CacheLookups,
}

impl OcspMetrics {
    pub(super) fn register(registry: &mut Registry) -> OcspMetrics {
        let responses = Family::default();
        registry.register(
            "ocsp_responses",
            "OCSP responses sent, by response status",
            responses.clone(),
        );
        let cache = CacheLookups::register(
            registry,
            "ocsp_cache_lookups",
            "Cacheable OCSP requests (one CertID, no nonce), by result (hit, miss)",
        );
        OcspMetrics { responses, cache }
    }

    pub fn response(&self, status: &'static str) {
        self.responses.get_or_create(&Status { status }).inc();
    }

    pub fn cache(&self, hit: bool) {
        self.cache.cache(hit);
    }
}

/// Registers `status_json_cache_lookups`.
pub(super) fn register_status_json(registry: &mut Registry) -> CacheLookups {
    CacheLookups::register(
        registry,
        "status_json_cache_lookups",
        "JSON status requests (certificates and tokens), by result: hit (an encoded answer \
         still right for the current checkpoint) or miss",
    )
}
