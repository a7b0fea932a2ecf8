//! Job mode, `credmint agent run -- CMD ...`: a credential for one command's lifetime.
//! The command gets the files' paths in its environment; the agent renews meanwhile (each
//! replaced certificate revoked at once), and when the command exits revokes the last
//! one, all with `cessationOfOperation` (never `superseded`, which could still renew), so a
//! finished job leaves no credential of the agent's behind.

use std::process::ExitStatus;

use tokio::sync::watch;

use super::config::AgentConfig;
use super::{Agent, AgentError};

/// The environment the command sees.
pub const ENV_CERT: &str = "CREDMINT_CERT_FILE";
pub const ENV_KEY: &str = "CREDMINT_KEY_FILE";
pub const ENV_BUNDLE: &str = "CREDMINT_BUNDLE_FILE";
pub const ENV_SPIFFE_ID: &str = "CREDMINT_SPIFFE_ID";
/// With a `[pkcs11]` key, instead of `CREDMINT_KEY_FILE`: the key's RFC 7512 URI.
pub const ENV_KEY_URI: &str = "CREDMINT_KEY_URI";

/// Runs `argv` with a credential; returns the exit code to leave with: the command's own,
/// or 128 + the signal that ended it, as a shell would.
pub async fn run(cfg: AgentConfig, argv: &[String]) -> Result<i32, AgentError> {
    let program = argv
        .first()
        .ok_or_else(|| AgentError::NoCredential("job mode needs a command after --".into()))?;
    let mut agent = Agent::new(cfg)?;
    agent.revoke_replaced = true;
    agent.obtain().await?;
    let files = agent.files().clone();
    let spiffe_id = agent
        .serving()
        .borrow()
        .as_ref()
        .and_then(|i| i.held.spiffe_id.clone())
        .unwrap_or_default();
    let (stop, stopped) = watch::channel(false);
    let api = match agent.spawn_workload_api(stopped.clone()) {
        Ok(api) => api,
        Err(e) => {
            agent.finish().await;
            return Err(e);
        }
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .env(ENV_CERT, &files.cert)
        .env(ENV_KEY, &files.key)
        .env(ENV_BUNDLE, &files.bundle)
        .env(ENV_SPIFFE_ID, spiffe_id);
    if let Some(token) = &agent.cfg.pkcs11 {
        // The key is in the token: the command uses it there.
        command.env_remove(ENV_KEY).env(ENV_KEY_URI, token.uri());
    }
    if let Some(api) = &agent.cfg.workload_api {
        command.env(
            "SPIFFE_ENDPOINT_SOCKET",
            super::workload_api::endpoint(&api.socket),
        );
    }
    if let crate::secret::SecretSource::Env(var) = &agent.cfg.enrollment_token {
        // The job gets its credential, never the means to enroll another.
        command.env_remove(var);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = stop.send(true);
            agent.finish().await;
            return Err(AgentError::io(std::path::Path::new(program), e));
        }
    };
    let renewing = tokio::spawn(async move {
        agent.run(stopped).await;
        agent
    });
    let status = wait_forwarding_signals(&mut child).await;
    let _ = stop.send(true);
    let mut agent = renewing
        .await
        .map_err(|e| AgentError::NoCredential(format!("renewal task: {e}")))?;
    agent.finish().await;
    if let Some(api) = api {
        let _ = api.await;
    }
    let code = exit_code(status.map_err(|e| AgentError::io(std::path::Path::new(program), e))?);
    tracing::info!(exit_code = code, "job finished");
    Ok(code)
}

/// Waits for the child, passing SIGTERM and SIGINT on to it (the agent outlives it, to
/// revoke its credential afterwards).
async fn wait_forwarding_signals(child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let sig = tokio::select! {
            status = child.wait() => return status,
            _ = term.recv() => rustix::process::Signal::TERM,
            _ = int.recv() => rustix::process::Signal::INT,
        };
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

impl Agent {
    /// The job is over: revoke what it held and remove the files.
    async fn finish(&mut self) {
        let mut outcome = "job finished; credential revoked".to_string();
        if let Some(held) = self.held.clone() {
            match self.appliance.revoke(&held, "cessationOfOperation").await {
                Ok(()) => tracing::info!(serial = %held.serial, "job credential revoked"),
                Err(e) => {
                    tracing::error!(serial = %held.serial, error = %e, "cannot revoke the job's certificate; it stays valid until it expires");
                    outcome = format!("job finished; revoking its certificate failed: {e}");
                }
            }
        }
        self.stop(super::Stop::Dead(outcome)).await;
    }
}
