//! The operator CLI talks HTTPS to a running `credmint serve` with the operator
//! certificate, so an operator never needs curl.

use crate::common::{date_in_days, free_port, text, TestAppliance};

/// `credmint integration register` of `name` with `scopes`, a 600-second TTL cap and a
/// review-by 300 days ahead.
fn register_cli(
    app: &TestAppliance,
    url: &str,
    name: &str,
    scopes: &[&str],
) -> std::process::Output {
    let review_by = date_in_days(300);
    let mut args = vec![
        "integration",
        "register",
        "--url",
        url,
        "--name",
        name,
        "--business-owner",
        "storage",
        "--technical-owner",
        "bob",
        "--purpose",
        "nightly backups",
        "--environment",
        "prod",
        "--max-ttl",
        "600",
        "--review-by",
        &review_by,
        "--approval-ref",
        "CHG-77",
    ];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    app.cli(&args)
}

#[test]
fn operator_cli_registers_lists_and_creates_enrollment_tokens() {
    let port = free_port();
    let app = TestAppliance::with_listen("cli", &format!("127.0.0.1:{port}"));
    let server = app.spawn_server();
    let url = format!("https://localhost:{port}");
    let register = register_cli(&app, &url, "backup-agent", &["backup:write", "backup:read"]);
    assert!(register.status.success(), "{}", text(&register.stderr));
    let out: serde_json::Value = serde_json::from_slice(&register.stdout).unwrap();
    assert_eq!(
        out["spiffe_id"],
        "spiffe://test.credmint.local/prod/backup-agent"
    );

    let list = app.cli(&["integration", "list", "--url", &url]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    assert!(text(&list.stdout).contains("backup-agent"));

    let enroll = app.cli(&["enroll", "backup-agent", "--ttl", "300", "--url", &url]);
    assert!(enroll.status.success(), "{}", text(&enroll.stderr));
    let token = text(&enroll.stdout).trim().to_string();
    assert!(token.starts_with("cmt_") && token.len() > 40, "{token}");

    // A refused request exits 31 with the server's message.
    let dup = register_cli(&app, &url, "backup-agent", &["a"]);
    assert_eq!(dup.status.code(), Some(31), "{}", text(&dup.stderr));
    assert!(text(&dup.stderr).contains("already exists"));

    let (status, log) = server.terminate();
    assert!(status.success());
    let log = log.join("\n");
    assert!(
        !log.contains(&token),
        "enrollment token leaked into the server log"
    );
    assert!(
        !log.contains(app.user_pin().trim()),
        "PIN leaked into the server log"
    );
}

#[test]
fn operator_cli_requests_and_a_second_operator_approves_a_new_operator() {
    let port = free_port();
    let app = TestAppliance::with_listen("cli-op", &format!("127.0.0.1:{port}"));
    let server = app.spawn_server();
    let url = format!("https://localhost:{port}");
    let csr = crate::common::openssl_csr("ec", "");
    let dir = tempfile::tempdir().unwrap();
    let csr_path = dir.path().join("carol.csr");
    std::fs::write(&csr_path, &csr.csr_pem).unwrap();
    let csr_arg = csr_path.to_str().unwrap();
    let add = app.cli(&[
        "operator",
        "add",
        "carol",
        "--csr",
        csr_arg,
        "--approval-ref",
        "CHG-5",
        "--url",
        &url,
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let pending: serde_json::Value = serde_json::from_slice(&add.stdout).unwrap();
    assert_eq!(pending["status"], "pending");
    let index = pending["request_index"].as_u64().unwrap().to_string();
    let listed = app.cli(&["operator", "requests", "--url", &url]);
    assert!(
        text(&listed.stdout).contains("carol"),
        "{}",
        text(&listed.stdout)
    );
    let out = dir.path().join("carol.pem");
    let out_arg = out.to_str().unwrap();
    // The requester may not approve its own request...
    let own = app.cli(&[
        "operator", "approve", &index, "--out", out_arg, "--url", &url,
    ]);
    assert!(!own.status.success());
    assert!(
        text(&own.stderr).contains("self-approval"),
        "{}",
        text(&own.stderr)
    );
    // ... the second init operator may.
    let approved = app.cli(&[
        "operator", "approve", &index, "--out", out_arg, "--url", &url, "--as", "admin2",
    ]);
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    let chain = std::fs::read_to_string(&out).unwrap();
    assert!(chain.starts_with("-----BEGIN CERTIFICATE-----"));
    drop(server);
}

/// `credmint` run where a workload lives: no appliance config at all.
fn workload_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_credmint"))
        .args(["--config", "/nonexistent/credmint.toml"])
        .args(args)
        .output()
        .unwrap()
}

fn serial_of(chain: &std::path::Path) -> String {
    let (ok, out) =
        crate::common::openssl(&["x509", "-noout", "-serial", "-in", chain.to_str().unwrap()]);
    assert!(ok, "{out}");
    out.trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

fn status_of(app: &TestAppliance, url: &str, id: &str) -> serde_json::Value {
    let out = app.cli(&["status", id, "--url", url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cli_verbs_renew_mint_check_and_revoke_without_curl_for_the_operator() {
    let port = free_port();
    let app = TestAppliance::with_listen("cli-cred", &format!("127.0.0.1:{port}"));
    let server = app.spawn_server();
    let url = format!("https://localhost:{port}");
    let register = register_cli(&app, &url, "job-runner", &["jobs:run"]);
    assert!(register.status.success(), "{}", text(&register.stderr));
    let enroll = app.cli(&["enroll", "job-runner", "--url", &url]);
    assert!(enroll.status.success(), "{}", text(&enroll.stderr));
    let token = text(&enroll.stdout).trim().to_string();

    // The workload enrolls with curl, as the README shows.
    let dir = tempfile::tempdir().unwrap();
    let csr = crate::common::openssl_csr("ec", "");
    let (ca, key, cert) = (
        dir.path().join("ca.pem"),
        dir.path().join("key.pem"),
        dir.path().join("cert.pem"),
    );
    std::fs::write(&ca, std::fs::read(app.data().join("ca.pem")).unwrap()).unwrap();
    std::fs::write(&key, &csr.key_pem).unwrap();
    let body = serde_json::json!({ "csr": csr.csr_pem }).to_string();
    let curl = std::process::Command::new(crate::common::require_tool("curl"))
        .args(["-fsS", "--cacert", ca.to_str().unwrap()])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ])
        .arg(format!("{url}/v1/enroll"))
        .arg("-o")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(curl.status.success(), "{}", text(&curl.stderr));
    let first = serial_of(&cert);

    let conn = [
        "--url",
        &url,
        "--ca",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let renew = workload_cli(&[&["renew", "--ttl", "300"][..], &conn].concat());
    assert!(renew.status.success(), "{}", text(&renew.stderr));
    let second = serial_of(&cert);
    assert_ne!(first, second, "renew did not replace the certificate");
    assert_eq!(status_of(&app, &url, &second)["status"], "good");

    let mint = workload_cli(
        &[
            &[
                "token",
                "--audience",
                "billing",
                "--scope",
                "jobs:run",
                "--ttl",
                "120",
                "--json",
            ][..],
            &conn,
        ]
        .concat(),
    );
    assert!(mint.status.success(), "{}", text(&mint.stderr));
    let minted: serde_json::Value = serde_json::from_slice(&mint.stdout).unwrap();
    let jti = minted["jti"].as_str().unwrap();
    assert_eq!(minted["token"].as_str().unwrap().split('.').count(), 3);
    let plain = workload_cli(
        &[
            &["token", "--audience", "billing", "--scope", "jobs:run"][..],
            &conn,
        ]
        .concat(),
    );
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    assert_eq!(text(&plain.stdout).trim().split('.').count(), 3);
    assert_eq!(status_of(&app, &url, jti)["status"], "good");

    let revoke = app.cli(&["revoke", jti, "--reason", "keyCompromise", "--url", &url]);
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    let token_status = status_of(&app, &url, jti);
    assert_eq!(token_status["status"], "revoked");
    assert_eq!(token_status["reason"], "keyCompromise");
    let revoke = app.cli(&[
        "revoke",
        &second,
        "--reason",
        "cessationOfOperation",
        "--url",
        &url,
    ]);
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    assert_eq!(status_of(&app, &url, &second)["status"], "revoked");

    // A revoked certificate renews nothing (unless revoked as `superseded`, see
    // tests/agent/standing.rs): refused (31), the file is left as it was.
    let again = workload_cli(&[&["renew"][..], &conn].concat());
    assert_eq!(again.status.code(), Some(31), "{}", text(&again.stderr));
    assert_eq!(serial_of(&cert), second);
    let unknown = app.cli(&["status", "00ff", "--url", &url]);
    assert_eq!(unknown.status.code(), Some(31), "{}", text(&unknown.stderr));
    drop(server);
}
