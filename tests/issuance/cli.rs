//! The operator CLI talks HTTPS to a running `credmint serve` with the operator
//! certificate, so an operator never needs curl.

use crate::common::{date_in_days, free_port, text, TestAppliance};

#[test]
fn operator_cli_registers_lists_and_creates_enrollment_tokens() {
    let port = free_port();
    let app = TestAppliance::with_listen("cli", &format!("127.0.0.1:{port}"));
    let server = app.spawn_server();
    let url = format!("https://localhost:{port}");
    let register = app.cli(&[
        "integration",
        "register",
        "--url",
        &url,
        "--name",
        "backup-agent",
        "--business-owner",
        "storage",
        "--technical-owner",
        "bob",
        "--purpose",
        "nightly backups",
        "--environment",
        "prod",
        "--scope",
        "backup:write",
        "--scope",
        "backup:read",
        "--max-ttl",
        "600",
        "--review-by",
        &date_in_days(300),
        "--approval-ref",
        "CHG-77",
    ]);
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
    let dup = app.cli(&[
        "integration",
        "register",
        "--url",
        &url,
        "--name",
        "backup-agent",
        "--business-owner",
        "x",
        "--technical-owner",
        "x",
        "--purpose",
        "x",
        "--environment",
        "prod",
        "--scope",
        "a",
        "--max-ttl",
        "60",
        "--review-by",
        &date_in_days(300),
        "--approval-ref",
        "x",
    ]);
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
