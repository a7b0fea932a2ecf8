//! The inventory over HTTPS and through the CLI: owner, purpose, class, scopes, live
//! credentials, last issuance, review-by, status, flags, and the filters.

use serde_json::{json, Value};

use crate::common::{free_port, openssl_csr, text, TestAppliance};
use crate::helpers::{assert_audit_clean, at, get, post, token};
use crate::support::{enroll, enrollment_token, register, registered_workload, registration};

fn find<'a>(inv: &'a Value, name: &str) -> &'a Value {
    inv["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {inv}"))
}

fn names(inv: &Value) -> Vec<String> {
    let mut v: Vec<String> = inv["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_shows_credentials_review_state_and_flags_with_filters() {
    let s = TestAppliance::new("gov-inventory").serve().await;
    let op = s.operator();
    assert_eq!(register(&s, &registration("idle")).await.status(), 201);
    let w = registered_workload(&s, "busy").await;
    assert_eq!(
        token(&w.client(&s), &s, &["deploy:read"], None).await.0,
        201
    );
    let (status, _) = post(
        &op,
        &s,
        "/v1/admin/integrations/busy/changes",
        json!({"scopes": ["deploy:read", "deploy:write", "deploy:admin"], "reason": "more"}),
    )
    .await;
    assert_eq!(status, 202);

    let (status, inv) = get(&op, &s, "/v1/admin/integrations").await;
    assert_eq!(status, 200);
    let busy = find(&inv, "busy");
    assert_eq!(busy["business_owner"], "payments");
    assert_eq!(busy["technical_owner"], "alice@example.com");
    assert_eq!(busy["purpose"], "deploys the payments service");
    assert_eq!(busy["privilege_class"], "routine");
    assert_eq!(busy["scopes"], json!(["deploy:read", "deploy:write"]));
    assert_eq!(busy["live_certificates"], 1);
    assert_eq!(busy["live_tokens"], 1);
    assert_eq!(busy["issued_total"], 2);
    assert!(busy["last_issuance"]
        .as_str()
        .unwrap()
        .starts_with(&at(&s, 0)[..10]));
    assert_eq!(busy["status"], "active");
    assert_eq!(busy["review_state"], "ok");
    assert_eq!(busy["flags"], json!(["change_pending"]));
    assert_eq!(busy["pending_changes"], 1);
    assert_eq!(find(&inv, "idle")["flags"], json!([]));
    assert_eq!(find(&inv, "idle")["last_issuance"], Value::Null);

    // 40 days later: everything expired and both dormant, until "busy" enrolls again.
    s.clock.advance(40 * 86_400);
    let (_, inv) = get(&op, &s, "/v1/admin/integrations").await;
    let busy = find(&inv, "busy");
    assert_eq!(
        (
            busy["live_certificates"].as_u64(),
            busy["live_tokens"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(busy["flags"], json!(["dormant", "change_pending"]));
    assert_eq!(find(&inv, "idle")["flags"], json!(["dormant"]));
    let tok = enrollment_token(&s, "busy").await;
    assert_eq!(
        enroll(&s, &tok, &openssl_csr("ec", ""), None)
            .await
            .status(),
        201
    );
    let mut reg = registration("vault");
    reg["privilege_class"] = json!("privileged");
    reg["review_by"] = json!(at(&s, 5 * 86_400));
    assert_eq!(register(&s, &reg).await.status(), 201);
    let (_, inv) = get(&op, &s, "/v1/admin/integrations").await;
    assert_eq!(find(&inv, "busy")["live_certificates"], 1);
    assert_eq!(find(&inv, "busy")["flags"], json!(["change_pending"]));
    assert_eq!(
        find(&inv, "vault")["flags"],
        json!(["review_due_soon", "privileged"])
    );

    for (query, expected) in [
        ("?dormant=true", vec!["idle"]),
        ("?privileged=true", vec!["vault"]),
        ("?privileged=false&dormant=false", vec!["busy"]),
        ("?overdue=true", vec![]),
    ] {
        let (_, inv) = get(&op, &s, &format!("/v1/admin/integrations{query}")).await;
        assert_eq!(names(&inv), expected, "{query}");
    }
    s.clock.advance(6 * 86_400);
    let (_, inv) = get(
        &op,
        &s,
        "/v1/admin/integrations?overdue=true&privileged=true",
    )
    .await;
    assert_eq!(names(&inv), vec!["vault"]);
    let (status, body) = get(&op, &s, "/v1/admin/integrations?owner=me").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(&op, &s, "/v1/admin/integrations?dormant=maybe").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("dormant")));
    // Operator only, like the metrics.
    let r = w
        .client(&s)
        .get(s.url("/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = w.client(&s).get(s.url("/metrics")).send().await.unwrap();
    assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
    assert_audit_clean(&s).await;
    s.stop().await;
}

#[test]
fn cli_lists_the_inventory_and_drives_the_lifecycle() {
    let port = free_port();
    let app = TestAppliance::with_listen("gov-cli", &format!("127.0.0.1:{port}"));
    let server = app.spawn_server();
    let url = format!("https://localhost:{port}");
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--url", &url]);
        let out = app.cli(&all);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    // Within the privileged cap (90 days) too.
    let review_by = crate::common::date_in_days(60);
    let register = |name: &str, class: &str| {
        let (code, out, err) = cli(&[
            "integration",
            "register",
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
            "--scope",
            "backup:write",
            "--scope",
            "backup:read",
            "--class",
            class,
            "--max-ttl",
            "600",
            "--review-by",
            &review_by,
            "--approval-ref",
            "CHG-77",
        ]);
        assert_eq!(code, Some(0), "{out}{err}");
    };
    register("backup-agent", "routine");
    register("key-escrow", "privileged");

    let (code, out, err) = cli(&["integrations", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let header = out.lines().next().unwrap();
    for col in [
        "NAME",
        "STATUS",
        "CLASS",
        "OWNER",
        "PURPOSE",
        "SCOPES",
        "CERTS",
        "TOKENS",
        "LAST ISSUANCE",
        "REVIEW BY",
        "FLAGS",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        out.contains("backup-agent") && out.contains("key-escrow"),
        "{out}"
    );
    let (_, out, _) = cli(&["integrations", "list", "--privileged"]);
    assert!(
        out.contains("key-escrow") && !out.contains("backup-agent"),
        "{out}"
    );
    assert!(
        out.contains("privileged") && out.contains("storage/bob"),
        "{out}"
    );
    let (_, out, _) = cli(&["integrations", "list", "--dormant", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["integrations"], json!([]));

    // Narrowing applies at once; an increase waits; the same operator cannot approve it.
    let (code, out, err) = cli(&[
        "integration",
        "change",
        "backup-agent",
        "--scope",
        "backup:read",
        "--reason",
        "read only now",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"narrowed\""), "{out}");
    let (code, out, err) = cli(&[
        "integration",
        "change",
        "backup-agent",
        "--max-ttl",
        "900",
        "--reason",
        "longer jobs",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let index = v["request_index"].as_u64().unwrap().to_string();
    let (_, out, _) = cli(&["integration", "changes"]);
    assert!(out.contains("longer jobs"), "{out}");
    let (code, _, err) = cli(&["integration", "approve", &index, "--approval-ref", "CAB-1"]);
    assert_eq!(code, Some(31), "{err}");
    assert!(err.contains("self-approval is refused"), "{err}");

    let review_by = (time::OffsetDateTime::now_utc() + time::Duration::days(100))
        .date()
        .to_string();
    let (code, out, err) = cli(&[
        "integration",
        "recertify",
        "backup-agent",
        "--review-by",
        &review_by,
        "--reference",
        "REV-1",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&review_by), "{out}");
    let (code, out, err) = cli(&[
        "integration",
        "decommission",
        "key-escrow",
        "--reason",
        "replaced",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"decommissioned\""), "{out}");
    let (_, out, _) = cli(&["integrations", "list"]);
    assert!(out.contains("decommissioned"), "{out}");
    // The existing verbs still work.
    let (code, out, _) = cli(&["integration", "show", "backup-agent"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\"backup:read\""), "{out}");
    drop(server);
}
