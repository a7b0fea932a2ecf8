//! The HTTPS listener's own certificate while serving: re-issued when it is due (fewer than
//! 7 days left, issued by another CA than the one in force, or for other names; the rule of
//! [`ensure_server_cert`]) and swapped into the running listener, so months of uptime never
//! end in an expired server certificate and a CA rotation is followed by a server
//! certificate from the new CA. Checked hourly; a failure (HSM away) is logged and retried.

use std::time::Duration;

use tokio::sync::watch;

use super::Active;
use crate::app::AppState;
use crate::ca::ensure_server_cert;

/// How often the running listener's certificate is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// Re-issues the server certificate if it is due and reloads the listener with it. Returns
/// true when a new certificate was issued. Blocking (signs with the CA key).
pub fn renew_if_due(state: &AppState) -> Result<bool, String> {
    let cfg = &state.config;
    let active = state.keys.current();
    let server = ensure_server_cert(
        &cfg.server_cert_path(),
        &cfg.server_key_path(),
        &cfg.server.names,
        cfg.identity.server_cert_validity_days,
        &active.ca,
        &active.keys.ca,
        state.clock.now(),
    )
    .map_err(|e| e.to_string())?;
    if server.issued {
        reload(state, &active, &server.chain_pem, &server.key_pem)?;
        tracing::info!(names = ?cfg.server.names, "renewed the server certificate while serving");
    }
    Ok(server.issued)
}

/// Puts `chain_pem`/`key_pem` and the client-certificate roots of `active` into the running
/// listener (new connections use them; established ones keep theirs).
pub(crate) fn reload(
    state: &AppState,
    active: &Active,
    chain_pem: &str,
    key_pem: &str,
) -> Result<(), String> {
    if let Some(tls) = state.keys.tls() {
        let roots = active.roots_der(state.clock.unix());
        let config =
            crate::tls::server_config(chain_pem, key_pem, &roots).map_err(|e| e.to_string())?;
        tls.reload_from_config(config);
    }
    Ok(())
}

/// Checks every `interval` until `stop` flips.
pub async fn run(state: AppState, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => break,
        }
        let st = state.clone();
        match tokio::task::spawn_blocking(move || renew_if_due(&st)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server certificate renewal failed; retrying in an hour")
            }
            Err(e) => tracing::error!(error = %e, "server certificate renewal task failed"),
        }
    }
}
