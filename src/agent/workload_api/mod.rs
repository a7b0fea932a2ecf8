//! The SPIFFE Workload API (SPIFFE Workload Endpoint and Workload API standards), served
//! by the agent on a Unix socket over gRPC: X.509-SVIDs and bundles streamed on every
//! renewal and bundle or CRL change, JWT-SVIDs minted through the appliance's
//! `/v1/tokens` (so the integration's audience and scope policy applies and each one has a
//! `jti` in the ledger), and ValidateJWTSVID that also asks the appliance whether the
//! token was revoked. go-spiffe, py-spiffe, rust-spiffe and spiffe-helper use it unchanged
//! with `SPIFFE_ENDPOINT_SOCKET=unix://<socket>`.

mod authority;
mod huffman;
mod service;

pub use authority::{rewrite_header_block, rewrite_stream};

/// Generated from `workload.proto` (upstream, no `package`: prost names the file `_.rs`).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;

use super::config::WorkloadApiConfig;
use super::{AgentError, Serving};
use crate::agent::appliance::Appliance;
use authority::AuthorityFix;
use pb::spiffe_workload_api_server::SpiffeWorkloadApiServer;

/// `unix://<path>`: what `SPIFFE_ENDPOINT_SOCKET` must say for this socket.
pub fn endpoint(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

/// Binds the socket (refusing one another process still serves), then serves until
/// `shutdown` turns true. Every open stream ends at shutdown.
pub async fn serve(
    cfg: WorkloadApiConfig,
    serving: Serving,
    appliance: Arc<Appliance>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let listener = bind(&cfg)?;
    tracing::info!(endpoint = %endpoint(&cfg.socket), "Workload API listening");
    let socket = cfg.socket.clone();
    let (end_streams, streams_end) = watch::channel(false);
    let api = service::WorkloadApi::new(cfg, serving, appliance, streams_end);
    let incoming = UnixListenerStream::new(listener).map(|r| r.map(AuthorityFix::new));
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
        let _ = end_streams.send(true);
    };
    let result = tonic::transport::Server::builder()
        .add_service(SpiffeWorkloadApiServer::with_interceptor(
            api,
            service::security_header,
        ))
        .serve_with_incoming_shutdown(incoming, stop)
        .await;
    let _ = std::fs::remove_file(&socket);
    result.map_err(|e| AgentError::Api(e.to_string()))
}

fn bind(cfg: &WorkloadApiConfig) -> Result<tokio::net::UnixListener, AgentError> {
    let path = &cfg.socket;
    let io = |e| AgentError::io(path, e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AgentError::Api(format!(
                "{} is served by another process",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    // Who may connect is the socket's mode and owner; who gets an identity is then
    // checked per call from SO_PEERCRED (`allowed_uids`).
    let mode = std::os::unix::fs::PermissionsExt::from_mode(cfg.socket_mode);
    std::fs::set_permissions(path, mode).map_err(io)?;
    if cfg.socket_gid.is_some() {
        std::os::unix::fs::chown(path, None, cfg.socket_gid).map_err(io)?;
    }
    Ok(listener)
}
