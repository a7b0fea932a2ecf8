//! tlog-tiles publication (`[tiles] dir`, README "Scaling reads: tiles"): after each
//! checkpoint is durable, the ledger's checkpoint, hash tiles and entry bundles are written
//! into a directory any HTTP server, object store sync or CDN can serve.
//!
//! A task of its own, woken by the checkpointer's signed-size channel: issuance never waits
//! on it, and a failed run (disk full, a conflicting file) is logged and retried; the ledger
//! is only read. What is written and how is in [`publish`].

pub mod publish;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use credmint_ledger::Ledger;

use crate::metrics::LedgerMetrics;
use tokio::sync::watch;

pub use publish::{publish, PublishError, Published};

/// Pause before retrying a failed run when no new checkpoint wakes the task sooner.
pub const RETRY: Duration = Duration::from_secs(5);

async fn run_once(ledger: &Arc<Ledger>, dir: &Path, metrics: &LedgerMetrics) -> bool {
    let (l, d) = (ledger.clone(), dir.to_path_buf());
    match tokio::task::spawn_blocking(move || publish(&l, &d)).await {
        Ok(Ok(p)) => {
            metrics.tiles_published(p.to);
            if p.to > p.from {
                tracing::info!(
                    from = p.from,
                    to = p.to,
                    files = p.written,
                    "tiles published"
                );
            }
            true
        }
        Ok(Err(error)) => {
            metrics.tiles_failed(error.kind());
            tracing::error!(kind = error.kind(), %error, dir = %dir.display(), "tiles publication failed; retrying");
            false
        }
        Err(error) => {
            metrics.tiles_failed("task");
            tracing::error!(%error, "tiles publication task failed; retrying");
            false
        }
    }
}

/// Publishes now, then after every newly signed checkpoint (and every [`RETRY`] while
/// failing), until `stop` flips; then publishes once more, so the checkpoint signed at
/// shutdown is published too (the caller flips `stop` after the checkpointer ended).
pub async fn run(
    ledger: Arc<Ledger>,
    dir: PathBuf,
    metrics: LedgerMetrics,
    mut signed: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut signed_open = true;
    loop {
        let ok = run_once(&ledger, &dir, &metrics).await;
        tokio::select! {
            changed = signed.changed(), if signed_open => signed_open = changed.is_ok(),
            _ = tokio::time::sleep(RETRY), if !ok => {}
            _ = stop.changed() => break,
        }
    }
    run_once(&ledger, &dir, &metrics).await;
}
