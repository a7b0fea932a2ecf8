//! Test harness: a real SoftHSM2 token in a temporary directory, a real redb ledger and a
//! real HTTPS listener on 127.0.0.1. Missing tools fail loudly: CI installs them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use credmint::config::Config;

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Absolute path of a required external tool; panics with an install hint if missing.
pub fn require_tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("required tool `{name}` not found on PATH: run `apt-get install -y softhsm2 opensc openssl` (CI does this in .ci/run)");
}

/// The process-wide SoftHSM2 config (one per test process: SoftHSM reads it once, at
/// C_Initialize). In-process appliances share it and tell tokens apart by label.
pub fn process_softhsm_conf() -> &'static Path {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        assert!(
            Path::new(SOFTHSM_MODULE).exists(),
            "SoftHSM2 module {SOFTHSM_MODULE} missing: apt-get install -y softhsm2"
        );
        let dir = tempfile::Builder::new()
            .prefix("credmint-softhsm-")
            .tempdir()
            .unwrap()
            .keep();
        let conf = softhsm_store(&dir);
        std::env::set_var("SOFTHSM2_CONF", &conf);
        conf
    })
}

/// A SoftHSM2 store under `dir` (`tokens/`) and its config file; returns the config path.
pub fn softhsm_store(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    conf
}

/// One appliance configuration in its own temporary data directory.
pub struct TestAppliance {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub token_label: String,
}

impl TestAppliance {
    /// `name` must be unique within the test binary (it becomes the token label).
    pub fn new(name: &str) -> TestAppliance {
        Self::with_listen(name, "127.0.0.1:0")
    }

    pub fn with_listen(name: &str, listen: &str) -> TestAppliance {
        let dir = tempfile::Builder::new()
            .prefix("credmint-test-")
            .tempdir()
            .unwrap();
        let token_label = format!("t-{name}");
        assert!(token_label.len() <= 32);
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/softhsm2.conf");
        let text = format!(
            r#"data_dir = "{data}"

[hsm]
module = "{SOFTHSM_MODULE}"
token_label = "{token_label}"
pin = {{ file = "hsm-user.pin" }}
sessions = 4

[hsm.softhsm]
token_dir = "softhsm-tokens"
conf_template = "{template}"
so_pin = {{ file = "hsm-so.pin" }}

[keys]
ca = {{ label = "ca", algorithm = "ecdsa-p256" }}
token = {{ label = "token", algorithm = "ecdsa-p256" }}
ledger = {{ label = "ledger", algorithm = "ed25519" }}

[ledger]
checkpoint_interval_secs = 1

[server]
listen = "{listen}"
names = ["localhost", "127.0.0.1"]

[identity]
trust_domain = "test.credmint.local"
ca_common_name = "credmint test CA"
ca_validity_days = 30
server_cert_validity_days = 10

[ttl]
routine_max_secs = 3600
privileged_max_secs = 900
"#,
            data = dir.path().join("data").display(),
            template = template.display(),
        );
        let config_path = dir.path().join("credmint.toml");
        std::fs::write(&config_path, text).unwrap();
        TestAppliance {
            dir,
            config_path,
            token_label,
        }
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.data().join("hsm-user.pin")).unwrap()
    }

    /// Provisions token, keys, CA and genesis in this process (shared SoftHSM store).
    pub fn init_in_process(&self) -> credmint::init::InitReport {
        process_softhsm_conf();
        credmint::init::run(&self.config()).expect("init")
    }

    /// Runs the real `credmint` binary with its own SoftHSM store under the data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_credmint"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("SOFTHSM2_CONF")
            .env("RUST_LOG", "info")
            .output()
            .expect("run credmint")
    }

    /// Rewrites a line of the config file.
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        assert!(text.contains(from), "config has no {from:?}");
        std::fs::write(&self.config_path, text.replace(from, to)).unwrap();
    }
}

/// The date (`YYYY-MM-DD`, UTC) `days` days from now: a review-by inside the caps
/// (365 days routine, 90 privileged) for registrations made at the start of a test.
pub fn date_in_days(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .date()
        .to_string()
}

/// Asserts a child process succeeded, showing what it printed if not.
#[allow(dead_code)]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything tests print through `tracing`, captured for secret-leak assertions.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static std::sync::Mutex<Vec<u8>> {
    static BUF: OnceLock<std::sync::Mutex<Vec<u8>>> = OnceLock::new();
    BUF.get_or_init(|| std::sync::Mutex::new(Vec::new()))
}

struct BufWriter;

impl std::io::Write for BufWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test process) a subscriber that records every log line at debug level.
pub fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(|| BufWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// A running in-process appliance.
pub struct Served {
    pub app: TestAppliance,
    pub running: Option<credmint::serve::Running>,
    pub base: String,
    pub ca_pem: Vec<u8>,
    pub clock: credmint::clock::Clock,
}

impl TestAppliance {
    /// init (in-process) and serve on 127.0.0.1:0.
    pub async fn serve(self) -> Served {
        capture_logs();
        self.init_in_process();
        let clock = credmint::clock::Clock::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let running =
            credmint::serve::start_with_clock(self.config(), Some(listener), clock.clone())
                .await
                .expect("serve");
        let base = format!("https://localhost:{}", running.addr.port());
        let ca_pem = std::fs::read(self.data().join("ca.pem")).unwrap();
        Served {
            app: self,
            running: Some(running),
            base,
            ca_pem,
            clock,
        }
    }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn state(&self) -> &credmint::app::AppState {
        &self.running.as_ref().unwrap().state
    }

    /// A client that trusts only this appliance's CA and presents no certificate.
    pub fn anonymous(&self) -> reqwest::Client {
        client(&self.ca_pem, None)
    }

    /// A client presenting the operator certificate `init` wrote.
    /// A client presenting the first init operator's certificate (`admin`).
    pub fn operator(&self) -> reqwest::Client {
        self.init_operator("admin")
    }

    /// A client presenting the second init operator's certificate (`admin2`): the other
    /// root of dual control.
    pub fn operator2(&self) -> reqwest::Client {
        self.init_operator("admin2")
    }

    fn init_operator(&self, name: &str) -> reqwest::Client {
        let data = self.app.data();
        let mut pem = std::fs::read(data.join(format!("operator-{name}.pem"))).unwrap();
        pem.extend(std::fs::read(data.join(format!("operator-{name}-key.pem"))).unwrap());
        client(&self.ca_pem, Some(&pem))
    }

    /// A client presenting `chain_pem` with `key_pem`.
    pub fn with_identity(&self, chain_pem: &str, key_pem: &str) -> reqwest::Client {
        let pem = format!("{chain_pem}{key_pem}");
        client(&self.ca_pem, Some(pem.as_bytes()))
    }

    /// Stops the appliance and serves the same data directory again (no init).
    pub async fn restart(mut self) -> Served {
        let running = self.running.take().unwrap();
        running
            .shutdown(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        capture_logs();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let running = credmint::serve::start_with_clock(
            self.app.config(),
            Some(listener),
            self.clock.clone(),
        )
        .await
        .expect("serve again");
        self.base = format!("https://localhost:{}", running.addr.port());
        self.running = Some(running);
        self
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(std::time::Duration::from_secs(5)).await.unwrap();
        }
    }
}

/// `GET url` with `client`: the body of a response of any status (tests assert on it).
pub async fn fetch(client: &reqwest::Client, url: &str) -> Vec<u8> {
    let resp = client.get(url).send().await.unwrap();
    resp.bytes().await.unwrap().to_vec()
}

pub fn client(ca_pem: &[u8], identity_pem: Option<&[u8]>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).unwrap()])
        .timeout(std::time::Duration::from_secs(20));
    if let Some(pem) = identity_pem {
        b = b.identity(reqwest::Identity::from_pem(pem).unwrap());
    }
    b.build().unwrap()
}

/// A key and PKCS#10 request made by openssl (an implementation nobody here wrote).
pub struct OpensslCsr {
    pub csr_pem: String,
    pub key_pem: String,
    pub dir: tempfile::TempDir,
}

/// `newkey` is an openssl -newkey argument: "ec", "ed25519", "rsa:2048", "rsa:1024".
/// `sans` like "DNS:a.example,URI:spiffe://td/x" (empty for none).
pub fn openssl_csr(newkey: &str, sans: &str) -> OpensslCsr {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let csr = dir.path().join("csr.pem");
    let mut cmd = Command::new(require_tool("openssl"));
    cmd.args(["req", "-new", "-nodes", "-subj", "/CN=workload"]);
    if newkey == "ec" {
        cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    } else {
        cmd.args(["-newkey", newkey]);
    }
    if !sans.is_empty() {
        cmd.args(["-addext", &format!("subjectAltName={sans}")]);
    }
    cmd.arg("-keyout").arg(&key).arg("-out").arg(&csr);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "openssl req: {}", text(&out.stderr));
    OpensslCsr {
        csr_pem: std::fs::read_to_string(&csr).unwrap(),
        key_pem: std::fs::read_to_string(&key).unwrap(),
        dir,
    }
}

/// Runs openssl with `args`, returning (success, stdout+stderr).
/// Runs `cmd` with `input` on its standard input; stdout and stderr captured.
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new(require_tool("openssl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// `openssl req -newkey ec (P-256) -nodes <args>`: a fresh key with a CSR or self-signed
/// certificate, as `args` say.
pub fn openssl_req_p256(args: &[&str]) -> (bool, String) {
    let mut all = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    all.extend_from_slice(args);
    openssl(&all)
}

/// Asks the appliance listening on `port` about `cert` with `openssl ocsp` (no nonce, so
/// the pre-signed cache answers), trusting only `ca`; returns (success, output).
pub fn openssl_ocsp(port: u16, ca: &str, cert: &str) -> (bool, String) {
    openssl_ocsp_at(&format!("https://127.0.0.1:{port}/ocsp"), ca, cert)
}

/// As [`openssl_ocsp`], against the responder at `url` (`http://` for the status listener).
pub fn openssl_ocsp_at(url: &str, ca: &str, cert: &str) -> (bool, String) {
    openssl(&[
        "ocsp",
        "-issuer",
        ca,
        "-CAfile",
        ca,
        "-url",
        url,
        "-cert",
        cert,
        "-no_nonce",
    ])
}

/// Checks a DER CRL with `openssl crl` (signature by `ca`) and that it lists `serial`
/// (openssl's upper-case hex).
pub fn assert_crl_lists(dir: &Path, der: &[u8], ca: &str, serial: &str) {
    let crl = dir.join("crl.der");
    std::fs::write(&crl, der).unwrap();
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl.to_str().unwrap(),
        "-CAfile",
        ca,
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    assert!(out.contains(&format!("Serial Number: {serial}")), "{out}");
}

/// A `credmint serve` child process with its own SoftHSM store; killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub log: std::sync::mpsc::Receiver<String>,
    pub lines: Vec<String>,
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl TestAppliance {
    /// Runs `credmint init` then starts `credmint serve` and waits until it listens.
    pub fn spawn_server(&self) -> ServerProcess {
        let init = self.cli(&["init"]);
        assert!(init.status.success(), "{}", text(&init.stderr));
        self.spawn_serve()
    }

    /// Starts `credmint serve` alone (no init) and waits until it listens.
    pub fn spawn_serve(&self) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_credmint"))
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .env_remove("SOFTHSM2_CONF")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = ServerProcess {
            child,
            log: rx,
            lines: Vec::new(),
        };
        server.wait_for("credmint serving", std::time::Duration::from_secs(30));
        server
    }
}

impl Served {
    /// `credmint init` + `credmint serve` as a child process with its own SoftHSM store
    /// (under the data directory, so it can be taken away without touching other tests),
    /// reached through the returned `Served` (whose `running` and `state()` are absent).
    pub fn spawned(name: &str) -> (Served, ServerProcess) {
        Served::spawned_with(name, None)
    }

    /// As [`Served::spawned`], with one config line replaced (`from`, `to`) before init.
    pub fn spawned_with(name: &str, edit: Option<(&str, &str)>) -> (Served, ServerProcess) {
        let port = free_port();
        let app = TestAppliance::with_listen(name, &format!("127.0.0.1:{port}"));
        if let Some((from, to)) = edit {
            app.edit_config(from, to);
        }
        let server = app.spawn_server();
        let ca_pem = std::fs::read(app.data().join("ca.pem")).unwrap();
        let served = Served {
            app,
            running: None,
            base: format!("https://localhost:{port}"),
            ca_pem,
            clock: credmint::clock::Clock::default(),
        };
        (served, server)
    }

    /// The port the appliance listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl ServerProcess {
    /// Collects log lines until one contains `needle`; panics after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.lines.iter().any(|l| l.contains(needle)) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in server log: {:?}",
                self.lines
            );
            if let Ok(line) = self.log.recv_timeout(std::time::Duration::from_millis(100)) {
                self.lines.push(line);
            }
        }
    }

    /// Sends SIGTERM and waits for the exit status, collecting the remaining log.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.log.recv_timeout(std::time::Duration::from_millis(300)) {
            self.lines.push(line);
        }
        (status, std::mem::take(&mut self.lines))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Hex serial of the leaf (first certificate) of a PEM chain.
pub fn leaf_serial(chain_pem: &str) -> String {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).unwrap();
    hex::encode(pem.parse_x509().unwrap().raw_serial())
}

/// The value of exactly `series` (name and labels as exposed) in a `/metrics` text.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
        .parse()
        .unwrap()
}

impl Served {
    /// Waits (up to 10 s) until a signed checkpoint covers the whole ledger; returns its size.
    pub async fn await_covered(&self) -> u64 {
        let size = self.state().ledger.size();
        assert!(
            self.state()
                .checkpoints
                .covered(size, std::time::Duration::from_secs(10))
                .await,
            "no checkpoint of size {size}"
        );
        size
    }

    /// `GET /metrics` as the init operator: the Prometheus text.
    pub async fn scrape_metrics(&self) -> String {
        let resp = self
            .operator()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        resp.text().await.unwrap()
    }

    /// `POST /v1/admin/certificates/{serial}/revoke` as the init operator.
    pub async fn revoke_certificate(&self, serial: &str, reason: &str) -> reqwest::Response {
        self.operator()
            .post(self.url(&format!("/v1/admin/certificates/{serial}/revoke")))
            .json(&serde_json::json!({ "reason": reason }))
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/status/token/{jti}`: the status code and JSON answer.
    pub async fn token_status(&self, jti: &str) -> (u16, serde_json::Value) {
        self.status_at(&format!("/v1/status/token/{jti}")).await
    }

    /// `GET /v1/status/{serial}`: the status code and JSON answer.
    pub async fn certificate_status(&self, serial: &str) -> (u16, serde_json::Value) {
        self.status_at(&format!("/v1/status/{serial}")).await
    }

    async fn status_at(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self.anonymous().get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// Every ledger record, decoded.
    pub fn records(&self) -> Vec<credmint_ledger::Record> {
        self.state()
            .ledger
            .records(0)
            .unwrap()
            .map(|r| r.unwrap().decode().unwrap())
            .collect()
    }

    /// The audit bundle, streamed from `GET /v1/admin/ledger/export`.
    pub async fn export_bundle(&self) -> Vec<u8> {
        let resp = self
            .operator()
            .get(self.url("/v1/admin/ledger/export"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }

    /// Exports the ledger and verifies it offline, semantics included, pinning only
    /// `pinned_key`; asserts it verifies with no violation.
    pub async fn assert_ledger_verifies(
        &self,
        pinned_key: [u8; 32],
    ) -> credmint_ledger::audit::AuditReport {
        assert_verifies(&self.export_bundle().await, pinned_key)
    }
}

/// The Ed25519 ledger key named by the genesis record of the ledger at `path`: what an
/// auditor pins.
pub fn genesis_ledger_key(path: &Path) -> [u8; 32] {
    genesis_key_of(&credmint_ledger::Ledger::open(path).unwrap())
}

/// As [`genesis_ledger_key`], for a ledger already open (a running appliance's).
pub fn genesis_key_of(ledger: &credmint_ledger::Ledger) -> [u8; 32] {
    let credmint_ledger::event::Event::Genesis(g) = ledger.record(0).unwrap().unwrap().event else {
        panic!("record 0 is not genesis")
    };
    g.keys
        .iter()
        .find(|k| k.role == credmint_ledger::event::KeyRole::Ledger)
        .and_then(|k| k.ed25519_raw())
        .unwrap()
}

/// Verifies `bundle` and asserts it is authentic with no semantic violation.
pub fn assert_verifies(bundle: &[u8], pinned_key: [u8; 32]) -> credmint_ledger::audit::AuditReport {
    let report = audit(bundle, pinned_key);
    assert_eq!(
        report.outcome,
        credmint_ledger::audit::Outcome::Verified,
        "{:?} {:?}",
        report.failure,
        report.violations
    );
    assert_eq!(report.violations_total, 0, "{:?}", report.violations);
    report
}

/// Verifies a bundle the way `credmint-audit verify` does.
pub fn audit(bundle: &[u8], pinned_key: [u8; 32]) -> credmint_ledger::audit::AuditReport {
    let opts = credmint_ledger::audit::AuditOptions {
        ledger_key: pinned_key,
        since: None,
        key_name: None,
        semantic: true,
        review_caps: Default::default(),
    };
    credmint_ledger::audit::verify_bundle(bundle, &opts, &mut |_, _| {}, &mut |_, _| {})
}

/// Sends `request` over a raw TLS connection (rustls, trusting only the appliance CA), then
/// reads the whole response until the server closes. Nothing is written after `request`,
/// so the server never leaves unread bytes behind (which would turn its close into a
/// reset): the answer is always readable.
pub fn raw_exchange(s: &Served, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut tls = raw_tls(s, None);
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let mut out = Vec::new();
    // A close without close_notify is fine here: everything before it was read.
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A raw TLS connection to the appliance (rustls, trusting only its CA), presenting
/// `identity` (certificate chain PEM followed by its key PEM) if given.
pub fn raw_tls(
    s: &Served,
    identity: Option<(&str, &str)>,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let port = s.running.as_ref().unwrap().addr.port();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    rustls::StreamOwned::new(raw_tls_client(s, identity), tcp)
}

/// The client side of [`raw_tls`], for a socket the test connected itself (from another
/// loopback address, say). Nothing is sent until the stream is first used.
pub fn raw_tls_client(s: &Served, identity: Option<(&str, &str)>) -> rustls::ClientConnection {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&s.ca_pem).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(chain.as_bytes())
                    .map(|c| c.unwrap())
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap()
}

/// A body announced above `server.max_body_bytes` is refused with 413 and the JSON error
/// shape from the headers alone, and a chunked body is cut at the limit with the same
/// answer. Deterministic: the client never writes what the server will not read.
/// `chunked`: also a body without a length (only for routes that read the body before
/// authenticating, like `/ocsp`).
pub fn assert_oversized_bodies_get_413(s: &Served, path: &str, content_type: &str, chunked: bool) {
    let limit = s.state().config.server.max_body_bytes;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        limit + 1
    );
    let resp = raw_exchange(s, head.as_bytes());
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    let lower = resp.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/json"), "{resp}");
    assert!(lower.contains("connection: close"), "{resp}");
    let body: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"], "too_large", "{resp}");

    if !chunked {
        return;
    }
    // No Content-Length: one chunk of limit+1 bytes, the last of which crosses the limit.
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        limit + 1
    )
    .into_bytes();
    chunked.extend(vec![0x30u8; limit + 1]);
    let resp = raw_exchange(s, &chunked);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("\"too_large\""), "{resp}");
}

// Intermediate CA mode: an enterprise (offline) root made with the openssl CLI.

/// Extension sections for `openssl x509 -req`: a CA (`v3_ca`) and a non-CA (`v3_leaf`).
pub const CA_EXT: &str = "[v3_ca]\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign, digitalSignature\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n[v3_leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n";

pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// A self-signed enterprise root: `<name>.pem` and `<name>.key` in `dir`.
pub fn openssl_root(dir: &Path, name: &str) -> String {
    let (ok, out) = openssl_req_p256(&[
        "-x509",
        "-keyout",
        &p(dir, &format!("{name}.key")),
        "-out",
        &p(dir, &format!("{name}.pem")),
        "-subj",
        &format!("/O=Example Corp/CN={name}"),
        "-days",
        "60",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(ok, "{out}");
    p(dir, &format!("{name}.pem"))
}

/// `openssl x509 -req`: `csr` signed by root `name` with extensions `section` of CA_EXT.
pub fn openssl_sign_csr(dir: &Path, root: &str, csr: &str, section: &str, out: &str) -> String {
    std::fs::write(dir.join("ext.cnf"), CA_EXT).unwrap();
    let (ok, o) = openssl(&[
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        &p(dir, &format!("{root}.pem")),
        "-CAkey",
        &p(dir, &format!("{root}.key")),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &p(dir, "ext.cnf"),
        "-extensions",
        section,
        "-out",
        &p(dir, out),
    ]);
    assert!(ok, "{o}");
    p(dir, out)
}

impl Served {
    /// `credmint serve` as a child, reached by clients trusting only the enterprise root.
    pub fn spawned_under_root(
        app: TestAppliance,
        port: u16,
        root_pem: &[u8],
    ) -> (Served, ServerProcess) {
        let server = app.spawn_serve();
        let s = Served {
            app,
            running: None,
            base: format!("https://localhost:{port}"),
            ca_pem: root_pem.to_vec(),
            clock: credmint::clock::Clock::default(),
        };
        (s, server)
    }
}
