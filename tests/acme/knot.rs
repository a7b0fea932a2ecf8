//! A Knot DNS server (Debian's `knotd`) authoritative for `acme.test` on a free port of
//! 127.0.0.1, taking RFC 2136 updates signed with a TSIG key: what certbot's and lego's
//! rfc2136 plugins publish dns-01 records to, and what the appliance's resolver asks.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, require_tool};

pub const ZONE: &str = "acme.test";
pub const TSIG_NAME: &str = "credmint-test";

pub struct Knot {
    pub port: u16,
    /// base64 HMAC-SHA256 key of [`TSIG_NAME`].
    pub secret: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Knot {
    pub fn start() -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let secret = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw);
        let d = dir.path().display();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             key:\n  - id: {TSIG_NAME}\n    algorithm: hmac-sha256\n    secret: {secret}\n\
             acl:\n  - id: update\n    key: {TSIG_NAME}\n    action: update\n\
             template:\n  - id: default\n    storage: \"{d}\"\n\
             zone:\n  - domain: {ZONE}\n    file: {ZONE}.zone\n    acl: update\n"
        );
        std::fs::write(dir.path().join("knot.conf"), conf).unwrap();
        let zone = format!(
            "$ORIGIN {ZONE}.\n$TTL 60\n@ SOA ns.{ZONE}. hostmaster.{ZONE}. 1 60 60 600 60\n\
             @ NS ns.{ZONE}.\nns A 127.0.0.1\n"
        );
        std::fs::write(dir.path().join(format!("{ZONE}.zone")), zone).unwrap();
        let log = std::fs::File::create(dir.path().join("knotd.log")).unwrap();
        let child = Command::new(require_tool("knotd"))
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        let knot = Knot {
            port,
            secret,
            child,
            dir,
        };
        knot.wait_serving();
        knot
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }

    /// Until the zone answers SOA (knotd binds first, loads zones after).
    fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let out = Command::new(require_tool("kdig"))
                .args(["@127.0.0.1", "-p", &self.port.to_string()])
                .args(["+short", "+timeout=1", "+retry=0", "SOA", ZONE])
                .output()
                .expect("run kdig");
            if out.status.success() && !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("knotd did not serve {ZONE}: {}", self.log());
    }

    /// Publishes (or with `None` removes) the TXT record at `name` through an RFC 2136
    /// update (`knsupdate`, TSIG-signed), as a DNS provider's API would.
    pub fn set_txt(&self, name: &str, value: Option<&str>) {
        let change = match value {
            Some(v) => format!("update add {name}. 60 TXT \"{v}\""),
            None => format!("update delete {name}. TXT"),
        };
        let script = format!(
            "server 127.0.0.1 {}\nzone {ZONE}.\n{change}\nsend\nquit\n",
            self.port
        );
        let mut child = Command::new(require_tool("knsupdate"))
            .args(["-y", &format!("hmac-sha256:{TSIG_NAME}:{}", self.secret)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run knsupdate");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "knsupdate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (a resolver that does not answer).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
    }
}
