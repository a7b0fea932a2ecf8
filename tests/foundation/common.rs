//! Test harness: a real SoftHSM2 token in a temporary directory, a real redb ledger and a
//! real HTTPS listener on 127.0.0.1. Missing tools fail loudly: CI installs them.

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
        std::env::set_var("SOFTHSM2_CONF", &conf);
        conf
    })
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
