//! HTTP requests by method, route pattern and status, fed by the access-log layer.

use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::{histogram, LATENCY_BUCKETS};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: &'static str,
    /// The matched route pattern (`/v1/status/{serial}`), never the raw path.
    route: String,
    status: u16,
}

type Histograms = Family<Request, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<Request, Counter>,
    duration: Histograms,
}

fn latency() -> Histogram {
    histogram(LATENCY_BUCKETS)
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> HttpMetrics {
        let m = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response head, by method, route pattern and status",
            Unit::Seconds,
            m.duration.clone(),
        );
        m
    }

    /// Records one answered request. `route` must be a pattern (or a fixed placeholder).
    pub fn observe(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let labels = Request {
            method: method_label(method),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

/// Standard methods by name; anything else is `other`, so a client cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
