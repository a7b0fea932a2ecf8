//! The HTTPS (and plain status) edge: what one connection, and one peer, may cost the appliance.
//!
//! Order for each accepted TCP connection: take a place under the global cap
//! (`server.max_connections`) and under its peer's cap (`server.max_connections_per_ip`),
//! or be closed at once, before any TLS work; finish the TLS handshake within
//! `server.tls_handshake_timeout_secs`; send each HTTP/1.1 request head within
//! `server.header_read_timeout_secs`; never sit with no request in flight for longer than
//! `server.idle_timeout_secs`. HTTP/2 connections are pinged and limited in concurrent
//! streams. This module never reads request content and never logs per connection:
//! refusals and failures are counted ([`EdgeStats`]) and warned about at most once per
//! [`caps::REPORT_EVERY`].

mod caps;
mod idle;

use std::future::{ready, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::RustlsAcceptor;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpStream;

use crate::config::ServerConfig;
pub use caps::Peer;
use caps::{Caps, Throttle};
use idle::{Activity, IdleStream, Tracked};

/// Descriptors kept free of connections: the ledger, the HSM module, logs, the accept of
/// a connection that is about to be refused.
pub const FD_RESERVE: u64 = 256;

/// The limits of `[server]`, as durations and counts.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub tls_handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub http2_max_concurrent_streams: u32,
    pub http2_keep_alive_interval: Duration,
    pub http2_keep_alive_timeout: Duration,
}

impl EdgeLimits {
    pub fn from_config(c: &ServerConfig) -> EdgeLimits {
        EdgeLimits {
            max_connections: c.max_connections,
            max_connections_per_ip: c.max_connections_per_ip,
            tls_handshake_timeout: Duration::from_secs(c.tls_handshake_timeout_secs),
            header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_header_bytes: c.max_header_bytes,
            http2_max_concurrent_streams: c.http2_max_concurrent_streams,
            http2_keep_alive_interval: Duration::from_secs(c.http2_keep_alive_interval_secs),
            http2_keep_alive_timeout: Duration::from_secs(c.http2_keep_alive_timeout_secs),
        }
    }

    /// Lowers the global cap to what the descriptor limit `nofile` leaves after
    /// [`FD_RESERVE`], so accepting never fails for lack of descriptors. Returns whether
    /// it was lowered.
    pub fn fit_to_descriptors(&mut self, nofile: u64) -> bool {
        let room = usize::try_from(nofile.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
        if self.max_connections <= room {
            return false;
        }
        self.max_connections = room;
        self.max_connections_per_ip = self.max_connections_per_ip.min(room);
        true
    }
}

/// Raises the soft descriptor limit to the hard one; returns the soft limit in force
/// afterwards (`u64::MAX` when unlimited).
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "could not raise the open-file limit to its hard limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Counters of the edge, for tests and operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeStats {
    /// Connections holding a place under the caps now.
    pub open: usize,
    pub refused_global: u64,
    pub refused_per_peer: u64,
    /// TLS handshakes not finished within the timeout.
    pub handshake_timeouts: u64,
    /// TLS handshakes that failed otherwise (bad record, alert, peer gone).
    pub handshake_failures: u64,
    /// Connections closed for being idle.
    pub idle_closed: u64,
    /// `accept()` on the listening socket failing (descriptor exhaustion and the like).
    pub accept_errors: u64,
}

/// The caps and counters shared by every connection of one listener.
pub struct Edge {
    caps: Arc<Caps>,
    handshake_timeouts: AtomicU64,
    handshake_failures: AtomicU64,
    idle_closed: AtomicU64,
    accept_errors: AtomicU64,
    accept_throttle: Throttle,
}

impl Edge {
    pub fn new(limits: &EdgeLimits) -> Arc<Edge> {
        Arc::new(Edge {
            caps: Caps::new(limits.max_connections, limits.max_connections_per_ip),
            handshake_timeouts: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            accept_throttle: Throttle::default(),
        })
    }

    pub fn stats(&self) -> EdgeStats {
        let (refused_global, refused_per_peer) = self.caps.refused();
        EdgeStats {
            open: self.caps.open(),
            refused_global,
            refused_per_peer,
            handshake_timeouts: self.handshake_timeouts.load(Ordering::Relaxed),
            handshake_failures: self.handshake_failures.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }

    fn note_idle_close(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// axum_server's accept error handler: `per_connection` is false for errors of the
    /// listening socket itself.
    pub fn accept_error(&self, per_connection: bool, e: &io::Error) {
        if !per_connection {
            let n = self.accept_errors.fetch_add(1, Ordering::Relaxed) + 1;
            if self.accept_throttle.ready() {
                tracing::warn!(error = %e, accept_errors_total = n, "accepting connections fails");
            }
            return;
        }
        match e.kind() {
            // Refused at a cap: already counted.
            io::ErrorKind::ConnectionRefused => {}
            io::ErrorKind::TimedOut => {
                self.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.handshake_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Puts each connection under the caps before its TLS handshake (or, on the plain status
/// listener, before hyper reads a byte), then under the idle timeout.
#[derive(Clone)]
pub struct EdgeAcceptor<A = RustlsAcceptor> {
    edge: Arc<Edge>,
    inner: A,
    idle: Duration,
}

impl EdgeAcceptor<RustlsAcceptor> {
    pub fn new(edge: Arc<Edge>, tls: RustlsAcceptor, limits: &EdgeLimits) -> Self {
        EdgeAcceptor {
            edge,
            inner: tls.handshake_timeout(limits.tls_handshake_timeout),
            idle: limits.idle_timeout,
        }
    }
}

impl EdgeAcceptor<DefaultAcceptor> {
    /// Plain HTTP (the status listener): caps and idle timeout, no handshake.
    pub fn plain(edge: Arc<Edge>, limits: &EdgeLimits) -> Self {
        EdgeAcceptor {
            edge,
            inner: DefaultAcceptor,
            idle: limits.idle_timeout,
        }
    }
}

type InnerStream<A, S> = <A as Accept<TcpStream, Tracked<S>>>::Stream;

impl<A, S> Accept<TcpStream, S> for EdgeAcceptor<A>
where
    S: Send + 'static,
    A: Accept<TcpStream, Tracked<S>>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = IdleStream<InnerStream<A, S>>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let slot = match stream.peer_addr() {
            Ok(peer) => self.edge.caps.admit(peer.ip()),
            Err(e) => return Box::pin(ready(Err(e))),
        };
        let Ok(slot) = slot else {
            // Closed here, before a byte of TLS (or HTTP) is read or written.
            drop(stream);
            return Box::pin(ready(Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "over the connection cap",
            ))));
        };
        let activity = Activity::new();
        let handshake = self
            .inner
            .accept(stream, Tracked::new(service, activity.clone()));
        let (edge, idle) = (self.edge.clone(), self.idle);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            Ok((IdleStream::new(stream, activity, idle, edge, slot), service))
        })
    }
}

/// hyper's side of the limits: header-read timeout and head size for HTTP/1.1, pings and
/// stream and header-list limits for HTTP/2. Both need the timer.
pub fn configure_http(builder: &mut Builder<TokioExecutor>, limits: &EdgeLimits) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_cap_is_kept_below_the_open_file_limit() {
        let server: crate::config::ServerConfig = toml::from_str(
            "listen = \"127.0.0.1:0\"\nnames = [\"localhost\"]\nmax_connections_per_ip = 1000",
        )
        .unwrap();
        let mut limits = EdgeLimits::from_config(&server);
        assert!(!limits.fit_to_descriptors(20_000));
        assert_eq!(limits.max_connections, 4096);
        assert!(limits.fit_to_descriptors(1024));
        assert_eq!(
            (limits.max_connections, limits.max_connections_per_ip),
            (1024 - FD_RESERVE as usize, 768)
        );
    }
}
