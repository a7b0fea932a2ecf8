//! One structured access-log line per request (`target: credmint::access`): method, route
//! pattern, status, latency, peer address and the presented identity. Never a secret: the
//! route is the pattern (`/v1/status/{serial}`), not the path; a bearer token is recorded
//! only as `bearer`, never its value; the identity is the client certificate's subject and
//! serial, which are public. Refusals (4xx/5xx) are logged like any other answer, so they
//! name the route and the peer. No API path carries a secret (bearer tokens travel only in
//! the `Authorization` header), so the request span's `uri` is safe too.
//!
//! The same layer feeds the HTTP request metrics (`crate::metrics::HttpMetrics`), so the
//! log and the counters see the same route, status and latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::tls::TlsInfo;

use crate::metrics::Metrics;

/// Logs one line and counts the request after the response is produced.
pub async fn log(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(no route)".into());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let actor = identity(&request);
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    metrics.http.observe(&method, &route, status, latency);
    tracing::info!(
        target: "credmint::access",
        method = %method,
        route = %route,
        status,
        latency_us = latency.as_micros() as u64,
        peer = %peer,
        actor = %actor,
        "request"
    );
    response
}

/// Who presented what: `cert:<subject>#<serial hex>` for a client certificate (checked by
/// the handler, not here), `bearer` for an `Authorization` header, `-` for nothing.
fn identity(request: &Request) -> String {
    let cert = request
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first().cloned());
    if let Some(der) = cert {
        if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) {
            let subject = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or("?")
                .chars()
                .take(128)
                .collect::<String>();
            return format!("cert:{subject}#{}", hex::encode(cert.raw_serial()));
        }
        return "cert:unparseable".into();
    }
    if request.headers().contains_key(header::AUTHORIZATION) {
        return "bearer".into();
    }
    "-".into()
}
