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

/// Serves on `listener` (from [`bind`]) until `shutdown` turns true. Every open stream
/// ends at shutdown.
pub async fn serve(
    listener: tokio::net::UnixListener,
    cfg: WorkloadApiConfig,
    serving: Serving,
    appliance: Arc<Appliance>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
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

/// Binds the socket, refusing a path another process still serves (or that is no socket).
pub fn bind(cfg: &WorkloadApiConfig) -> Result<tokio::net::UnixListener, AgentError> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    let path = &cfg.socket;
    let io = |p: &Path, e| AgentError::io(p, e);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        // Replace only a socket nobody serves any more; never a file, never a live one.
        let stale = meta.file_type().is_socket()
            && matches!(
                std::os::unix::net::UnixStream::connect(path),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            );
        if !stale {
            return Err(AgentError::Api(format!(
                "{} exists and is not a stale socket (served by another process, or not a socket)",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| io(path, e))?;
    }
    // Bound in a private directory, given its mode and group there, then renamed into
    // place: nobody can connect while the umask's mode still applies.
    let private = dir.join(format!(".credmint-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| io(&private, e))?;
    let staged = private.join("api.sock");
    let bound = (|| {
        let listener = tokio::net::UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(cfg.socket_mode))?;
        if cfg.socket_gid.is_some() {
            std::os::unix::fs::chown(&staged, None, cfg.socket_gid)?;
        }
        std::fs::rename(&staged, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound.map_err(|e| io(path, e))
}
