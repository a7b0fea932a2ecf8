//! Signs a new ledger checkpoint on its own schedule, apart from appends (as Tessera
//! does), so readers get a fresh signed tree head without any request waiting on C_Sign.
//! A change that relying parties must be able to prove soon (a revocation, a status query
//! about a record not yet covered) wakes it early; wake-ups within a short window are
//! coalesced into one signature.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::app::AppState;

/// Coalescing window after an early wake-up.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Wakes the checkpointer and publishes the size of every checkpoint it signs.
pub struct CheckpointSignal {
    wake: Notify,
    signed: watch::Sender<u64>,
}

impl CheckpointSignal {
    pub fn new(size: u64) -> Arc<CheckpointSignal> {
        Arc::new(CheckpointSignal {
            wake: Notify::new(),
            signed: watch::Sender::new(size),
        })
    }

    /// Follows the size of every checkpoint signed from now on (the tiles publisher).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.signed.subscribe()
    }

    /// Asks for a checkpoint soon.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until a checkpoint covering `size` records exists, at most `timeout`.
    pub async fn covered(&self, size: u64, timeout: Duration) -> bool {
        let mut rx = self.signed.subscribe();
        if *rx.borrow() >= size {
            return true;
        }
        self.wake();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s >= size))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Signs a checkpoint if the ledger grew since the last one; returns the new size if so.
pub async fn sign_if_grown(state: &AppState) -> Result<Option<u64>, String> {
    let st = state.clone();
    let signed = tokio::task::spawn_blocking(move || -> Result<Option<u64>, String> {
        let size = st.ledger.size();
        let latest = st.ledger.latest_checkpoint().map_err(|e| e.to_string())?;
        let signed_size = latest.as_deref().and_then(checkpoint_size);
        if signed_size == Some(size) {
            if st.latest_checkpoint().is_none() {
                if let Some(note) = latest {
                    st.set_checkpoint(note);
                }
            }
            return Ok(None);
        }
        let note = st
            .ledger
            .sign_checkpoint(&st.keys.current().keys.ledger)
            .map_err(|e| e.to_string())?;
        let size = checkpoint_size(&note).unwrap_or(size);
        st.set_checkpoint(note);
        Ok(Some(size))
    })
    .await
    .map_err(|e| e.to_string())??;
    if let Some(size) = signed {
        state.checkpoints.signed.send_if_modified(|s| {
            let grew = size > *s;
            if grew {
                *s = size;
            }
            grew
        });
    }
    Ok(signed)
}

/// Tree size on the second line of a checkpoint body.
pub fn checkpoint_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// Runs until `stop` flips, then signs one last checkpoint so the final state is covered.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = state.checkpoints.wake.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = stop.changed() => break,
        }
        match sign_if_grown(&state).await {
            Ok(Some(size)) => tracing::info!(size, "checkpoint signed"),
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "checkpoint signing failed"),
        }
    }
    if let Err(error) = sign_if_grown(&state).await {
        tracing::error!(%error, "final checkpoint signing failed");
    }
}
