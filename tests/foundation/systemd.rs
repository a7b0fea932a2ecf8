//! The systemd unit as `deploy/install.sh` installs it: `systemd-analyze verify` finds
//! nothing to say, `systemd-analyze security` rates it OK (<= 3.0), and the installed
//! `credmint serve` tells the manager it is ready (sd_notify READY=1) only once HTTPS
//! answers, and that it is stopping when a drain begins.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{client, free_port, require_tool, text};

fn install(root: &Path) {
    let out = Command::new("bash")
        .arg("deploy/install.sh")
        .arg("--root")
        .arg(root)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CREDMINT_BIN", env!("CARGO_BIN_EXE_credmint"))
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert!(out.status.success(), "install.sh: {}", text(&out.stderr));
}

/// `systemd-analyze verify` says nothing about `unit`, and `security` rates it OK (at most
/// 3.0); prints the score.
fn assert_verifies_and_rates_ok(unit: &Path) {
    let analyze = require_tool("systemd-analyze");
    let verify = Command::new(&analyze)
        .arg("verify")
        .arg(unit)
        .output()
        .unwrap();
    let said = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "verify: {said}"
    );
    let security = Command::new(&analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .unwrap();
    let report = text(&security.stdout);
    let name = format!("{}: ", unit.file_name().unwrap().to_str().unwrap());
    let score: f64 = report
        .lines()
        .find_map(|l| l.split(name.as_str()).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in: {report}"));
    println!("systemd-analyze security {name}{score}");
    assert!(score <= 3.0, "exposure {score} above 3.0 (OK):\n{report}");
}

#[test]
fn installed_unit_verifies_rates_ok_and_serve_notifies_readiness() {
    let root = tempfile::tempdir().unwrap();
    install(root.path());
    let unit = root.path().join("etc/systemd/system/credmint.service");
    assert_verifies_and_rates_ok(&unit);
    for line in [
        "Type=notify",
        "RestartPreventExitStatus=2 3 4 12 13 14 16 22 24",
    ] {
        assert!(
            std::fs::read_to_string(&unit).unwrap().contains(line),
            "{line}"
        );
    }

    // Start the installed appliance as systemd would (ExecStart, CREDMINT_CONFIG), on a
    // free port, with a notification socket of our own.
    let config = root.path().join("etc/credmint/credmint.toml");
    let port = free_port();
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        toml.replace(
            "listen = \"127.0.0.1:8443\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ),
    )
    .unwrap();
    let socket_path = root.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Command::new(root.path().join("opt/credmint/bin/credmint"))
        .arg("serve")
        .env("CREDMINT_CONFIG", &config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env_remove("SOFTHSM2_CONF")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 60 s");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.starts_with("READY=1\n"), "{message}");
    // Ready means serving: HTTPS answers at once, with no retry.
    let ca = std::fs::read(root.path().join("var/lib/credmint/ca.pem")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        client(&ca, None)
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert!(buf[..n].starts_with(b"STOPPING=1"));
    assert!(child.wait().unwrap().success());
}

/// The agent's unit: `systemd-analyze verify` says nothing, `security` rates it OK (at
/// most 3.0, although it keeps CAP_CHOWN, CAP_FOWNER and CAP_KILL to hand files to the
/// workload's user and signal it), and what it starts is `credmint agent` reading the
/// agent config.
#[test]
fn installed_agent_unit_verifies_and_is_sandboxed() {
    let root = tempfile::tempdir().unwrap();
    install(root.path());
    let unit = root
        .path()
        .join("etc/systemd/system/credmint-agent.service");
    assert_verifies_and_rates_ok(&unit);
    let text = std::fs::read_to_string(&unit).unwrap();
    let bin = root.path().join("opt/credmint/bin/credmint");
    assert!(
        text.contains(&format!("ExecStart={} agent", bin.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "CREDMINT_AGENT_CONFIG={}",
            root.path().join("etc/credmint/agent.toml").display()
        )),
        "{text}"
    );
    // The unit's command line parses: `credmint agent` with that variable and no file
    // says which file it could not read (exit 3), not a usage error.
    let out = Command::new(&bin)
        .arg("agent")
        .env(
            "CREDMINT_AGENT_CONFIG",
            root.path().join("etc/credmint/agent.toml"),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent.toml"));
}
