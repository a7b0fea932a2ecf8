//! The operator CLI talks HTTPS to a running `credmint serve` with the operator
//! certificate, so an operator never needs curl.

use crate::common::{free_port, text, TestAppliance};

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
        "2099-06-30",
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
        "2099-01-01",
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
