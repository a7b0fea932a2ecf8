//! Signs a new ledger checkpoint on its own schedule, apart from appends (as Tessera
//! does), so readers get a fresh signed tree head without any request waiting on C_Sign.

use std::time::Duration;

use tokio::sync::watch;

use crate::app::AppState;

/// Signs a checkpoint if the ledger grew since the last one; returns the new size if so.
pub async fn sign_if_grown(state: &AppState) -> Result<Option<u64>, String> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
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
            .sign_checkpoint(&st.keys.ledger)
            .map_err(|e| e.to_string())?;
        st.set_checkpoint(note);
        Ok(Some(size))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Tree size on the second line of a checkpoint body.
fn checkpoint_size(note: &str) -> Option<u64> {
    note.lines().nth(1)?.parse().ok()
}

/// Runs until `stop` flips, then signs one last checkpoint so the final state is covered.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
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
