//! A `credmint agent` child process with its own directory and config, and waits on
//! the `status.json` it keeps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{openssl, Served};

/// Agent settings the tests vary.
pub struct Knobs {
    pub ttl_secs: u64,
    pub at_fraction: f64,
    pub poll_secs: u64,
    /// More agent config after `[renew]`: whole tables such as `[workload_api]`.
    pub extra: String,
    /// Environment of the agent process.
    pub env: Vec<(String, String)>,
}

impl Default for Knobs {
    /// A 12 s certificate renewed at half its life, standing polled every second, retries
    /// from 200 ms up to 1 s.
    fn default() -> Self {
        Knobs {
            ttl_secs: 12,
            at_fraction: 0.5,
            poll_secs: 1,
            extra: String::new(),
            env: Vec::new(),
        }
    }
}

pub struct Agent {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    /// Writes the config (token in a file, 0600) without starting anything.
    pub fn configure(s: &Served, token: &str, knobs: &Knobs) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("credmint-agent-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), &s.ca_pem).unwrap();
        let agent = Agent {
            config: dir.path().join("agent.toml"),
            log: dir.path().join("agent.log"),
            env: knobs.env.clone(),
            dir,
            child: None,
        };
        agent.give_token(token);
        let text = format!(
            r#"url = "{url}"
ca = "ca.pem"
enrollment_token = {{ file = "token" }}
dir = "out"
ttl_secs = {ttl}

[renew]
at_fraction = {at}
jitter_fraction = 0.0
backoff_initial_ms = 200
backoff_max_secs = 1
poll_secs = {poll}
{extra}
"#,
            url = s.base,
            ttl = knobs.ttl_secs,
            at = knobs.at_fraction,
            poll = knobs.poll_secs,
            extra = knobs.extra,
        );
        std::fs::write(&agent.config, text).unwrap();
        agent
    }

    pub fn start(s: &Served, token: &str, knobs: &Knobs) -> Agent {
        let mut agent = Agent::configure(s, token, knobs);
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_credmint"))
            .args(["agent", "-c"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Replaces the token file (what an operator does to have the agent re-enroll).
    pub fn give_token(&self, token: &str) {
        let path = self.dir.path().join("token");
        std::fs::write(&path, format!("{token}\n")).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&path, mode).unwrap();
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join("out").join(name)
    }

    pub fn status(&self) -> Value {
        std::fs::read(self.out("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    }

    /// The agent's log, without terminal colour codes.
    pub fn log(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Polls `status.json` every 50 ms until `pred` holds; panics after `timeout` with the
    /// last status and the agent's log.
    pub async fn wait(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent: no {what} within {timeout:?}; status {status}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the agent serves a certificate other than `not` (any, for `None`);
    /// returns its serial.
    pub async fn serving(&self, timeout: Duration, not: Option<&str>) -> String {
        let status = self
            .wait(timeout, "new certificate served", |s| {
                s["phase"] == "serving" && s["serial"].as_str().is_some_and(|x| Some(x) != not)
            })
            .await;
        status["serial"].as_str().unwrap().to_string()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Checks the delivered files with openssl: the chain verifies against the bundle for
/// client auth, the key is the certificate's, the key file is 0600, and the certificate
/// is valid for at least `secs` more seconds. Returns the leaf's serial (lowercase hex).
pub fn assert_files_valid(agent: &Agent, secs: u64) -> String {
    let cert = agent.out("cert.pem");
    let key = agent.out("key.pem");
    let bundle = agent.out("bundle.pem");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, out) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        &p(&bundle),
        &p(&cert),
    ]);
    assert!(ok, "openssl verify: {out}");
    let (ok, out) = openssl(&[
        "x509",
        "-in",
        &p(&cert),
        "-noout",
        "-checkend",
        &secs.to_string(),
    ]);
    assert!(ok, "certificate expires within {secs} s: {out}");
    let (_, cert_pub) = openssl(&["x509", "-in", &p(&cert), "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(&["pkey", "-in", &p(&key), "-pubout"]);
    assert_eq!(cert_pub, key_pub, "key.pem is not the certificate's key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "key.pem mode");
    crate::common::leaf_serial(&std::fs::read_to_string(&cert).unwrap())
}

/// The agent log must never carry the token or the key.
pub fn assert_log_clean(agent: &Agent, token: &str) {
    let log = agent.log();
    assert!(!log.contains(token), "token in the agent log");
    assert!(!log.contains("PRIVATE KEY"), "key in the agent log");
}
