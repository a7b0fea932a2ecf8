//! Handing the credential to the program: files replaced atomically, then a reload action
//! (a signal to a PID, a command), the shape of `step ca renew --daemon` and spiffe-helper.

use std::path::Path;

use super::config::{FilesConfig, ReloadConfig};
use super::credential::Held;
use super::AgentError;

/// `HUP`, `SIGHUP`, ...: the signals a reload may send.
pub fn signal(name: &str) -> Option<rustix::process::Signal> {
    use rustix::process::Signal;
    match name.trim_start_matches("SIG") {
        "HUP" => Some(Signal::HUP),
        "USR1" => Some(Signal::USR1),
        "USR2" => Some(Signal::USR2),
        "TERM" => Some(Signal::TERM),
        "INT" => Some(Signal::INT),
        _ => None,
    }
}

fn remove(path: &Path) -> Result<(), AgentError> {
    crate::fsutil::remove_if_present(path).map_err(|e| AgentError::io(path, e))
}

/// Longest a reload command may run.
const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Delivery {
    files: FilesConfig,
    reload: ReloadConfig,
    /// The agent's `dir`: where the reload command runs.
    workdir: std::path::PathBuf,
    /// The enrollment token's variable, kept out of the reload command's environment.
    token_env: Option<String>,
}

impl Delivery {
    pub fn new(
        files: FilesConfig,
        reload: ReloadConfig,
        workdir: &Path,
        token_env: Option<String>,
    ) -> Delivery {
        Delivery {
            files,
            reload,
            workdir: workdir.to_owned(),
            token_env,
        }
    }

    pub fn files(&self) -> &FilesConfig {
        &self.files
    }

    /// Writes the key, the CA bundle and the CRL, then the certificate chain last: a
    /// program that watches the certificate file sees it change only once the rest is
    /// in place.
    pub fn deliver(
        &self,
        held: &Held,
        bundle: &[u8],
        crl_der: Option<&[u8]>,
    ) -> Result<(), AgentError> {
        let f = &self.files;
        match held.key.pem() {
            Some(pem) => self.put(&f.key, pem.as_bytes(), f.key_mode)?,
            // A token key is used from the token (its URI); no file may suggest otherwise.
            None => remove(&f.key)?,
        }
        self.put(&f.bundle, bundle, f.cert_mode)?;
        if let Some(der) = crl_der.filter(|_| !f.crl.as_os_str().is_empty()) {
            let pem = pem::encode(&pem::Pem::new("X509 CRL", der));
            self.put(&f.crl, pem.as_bytes(), f.cert_mode)?;
        }
        self.put(&f.cert, held.chain_pem.as_bytes(), f.cert_mode)
    }

    /// Removes the certificate and key, so no program started from now on can use a
    /// credential the agent no longer vouches for (one already running keeps what it
    /// loaded until its certificate expires or fails its peers' revocation check).
    pub fn withdraw(&self) -> Result<(), AgentError> {
        remove(&self.files.cert)?;
        remove(&self.files.key)
    }

    fn put(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), AgentError> {
        let io = |e| AgentError::io(path, e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        crate::fsutil::write_atomically(path, bytes, mode).map_err(io)?;
        if self.files.uid.is_some() || self.files.gid.is_some() {
            std::os::unix::fs::chown(path, self.files.uid, self.files.gid).map_err(io)?;
        }
        Ok(())
    }

    /// Runs the reload action. Failures are returned for the log: the files are in place
    /// either way, and the next renewal tries again.
    pub async fn reload(&self) -> Result<(), AgentError> {
        let r = &self.reload;
        if let Some(pid_file) = &r.pid_file {
            let text =
                std::fs::read_to_string(pid_file).map_err(|e| AgentError::io(pid_file, e))?;
            let pid = text
                .trim()
                .parse::<i32>()
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .ok_or_else(|| AgentError::Reload(format!("{}: not a PID", pid_file.display())))?;
            let sig = signal(r.signal.as_deref().unwrap_or("HUP"))
                .unwrap_or(rustix::process::Signal::HUP);
            rustix::process::kill_process(pid, sig).map_err(|e| {
                AgentError::Reload(format!("signal to PID {}: {e}", pid.as_raw_nonzero()))
            })?;
        }
        if let Some(argv) = &r.command {
            let mut command = tokio::process::Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .current_dir(&self.workdir)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            if let Some(var) = &self.token_env {
                command.env_remove(var);
            }
            let run = command.status();
            // A hung reload must not stop renewals (or a job's final revocation).
            let status = tokio::time::timeout(RELOAD_TIMEOUT, run)
                .await
                .map_err(|_| {
                    AgentError::Reload(format!(
                        "{} did not finish within {RELOAD_TIMEOUT:?}; killed",
                        argv[0]
                    ))
                })?
                .map_err(|e| AgentError::Reload(format!("{}: {e}", argv[0])))?;
            if !status.success() {
                return Err(AgentError::Reload(format!(
                    "{} exited with {status}",
                    argv[0]
                )));
            }
        }
        Ok(())
    }
}
