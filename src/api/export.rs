//! `GET /v1/admin/ledger/export`: the audit bundle, streamed in constant memory.
//!
//! The appliance signs a checkpoint covering everything first (the bundle stops at the
//! latest signed checkpoint), then the ledger crate writes the bundle from one consistent
//! snapshot into a bounded channel that feeds the response body.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

use super::extract::Operator;
use super::ApiError;
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/ledger/export", get(export))
}

/// `std::io::Write` into a bounded channel: the blocking exporter waits when the client
/// reads slowly, so memory stays bounded whatever the ledger size.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The self-contained audit bundle (records, checkpoints, key history), streamed; check it
/// offline with `credmint-audit`.
#[utoipa::path(
    get, path = "/v1/admin/ledger/export", tag = "ledger",
    security(("operator_mtls" = [])),
    responses((status = 200, description = "Export bundle (ledger/FORMAT.md)", content_type = "application/octet-stream", body = Vec<u8>))
)]
pub async fn export(
    State(state): State<AppState>,
    operator: Operator,
) -> Result<impl IntoResponse, ApiError> {
    crate::checkpointer::sign_if_grown(&state)
        .await
        .map_err(|e| ApiError::Unavailable {
            what: "checkpoint",
            detail: e,
        })?;
    let (tx, rx) = mpsc::channel(16);
    let ledger = state.ledger.clone();
    tracing::info!(operator = %operator.name, size = ledger.size(), "ledger export started");
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx.clone()));
        let result = credmint_ledger::export::export_bundle(&ledger, &mut out)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                std::io::Write::flush(&mut out)
                    .map(|_| s)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(summary) => tracing::info!(records = summary.records, "ledger export finished"),
            Err(e) => {
                tracing::error!(error = %e, "ledger export failed");
                // Abort the body so the client sees a truncated transfer, never a "valid" prefix.
                let _ = tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    ))
}
