//! Read-only monitoring tokens: `credmint monitor grant` writes a token (mode 0600) that
//! scrapes `/metrics` and reads the inventory over real HTTPS, is refused (403) on every
//! route that changes state, stops working when withdrawn or expired, and is recorded in
//! the ledger only as a hash, in events the offline auditor accepts.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::common::{captured_logs, text, Served, TestAppliance};
use crate::helpers::{assert_audit_clean, get, post};
use crate::support::registration;

pub fn bearer(s: &Served, token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&s.ca_pem).unwrap()])
        .default_headers(headers)
        .build()
        .unwrap()
}

/// `credmint monitor grant NAME --out FILE` against the served appliance; the token read
/// back from the file.
pub fn grant(s: &Served, name: &str, extra: &[&str]) -> String {
    let out = s.app.data().join(format!("{name}.token"));
    let mut args = vec!["monitor", "grant", name, "--url", &s.base];
    let out_arg = out.display().to_string();
    args.extend(["--out", &out_arg]);
    args.extend(extra);
    let run = s.app.cli(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let shown = text(&run.stdout);
    let token = std::fs::read_to_string(&out).unwrap();
    assert!(token.starts_with("cmm_") && token.len() > 40, "{token}");
    assert!(!shown.contains(&token), "the token must not reach stdout");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn monitoring_token_reads_and_changes_nothing() {
    let s = TestAppliance::new("monitoring").serve().await;
    let op = s.operator();
    let (status, _) = post(&op, &s, "/v1/admin/integrations", registration("billing")).await;
    assert_eq!(status, 201);
    let token = grant(&s, "prometheus", &["--ttl-days", "30"]);
    let monitor = bearer(&s, &token);

    // Reads: metrics, the inventory, one integration.
    let metrics = monitor.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("credmint_"));
    let (status, inventory) = get(&monitor, &s, "/v1/admin/integrations").await;
    assert_eq!(status, 200, "{inventory}");
    assert_eq!(inventory["integrations"][0]["name"], "billing");
    let (status, _) = get(&monitor, &s, "/v1/admin/integrations/billing").await;
    assert_eq!(status, 200);

    // Writes are refused with 403 naming the reason, and nothing is written.
    let size = s.state().ledger.size();
    for (path, body) in [
        ("/v1/admin/integrations", registration("sneaky")),
        ("/v1/admin/integrations/billing/enrollments", json!({})),
        (
            "/v1/admin/integrations/billing/suspend",
            json!({"reason": "x"}),
        ),
        ("/v1/admin/monitors", json!({"name": "second"})),
    ] {
        let (status, body) = post(&monitor, &s, path, body).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("read-only"),
            "{body}"
        );
    }
    let (status, _) = get(&monitor, &s, "/v1/admin/monitors").await;
    assert_eq!(status, 403, "the token list is operator-only");
    assert_eq!(s.state().ledger.size(), size);

    // A second live grant of the same name is refused; an unknown token opens nothing.
    let (status, body) = post(&op, &s, "/v1/admin/monitors", json!({"name": "prometheus"})).await;
    assert_eq!(status, 409, "{body}");
    let forged = bearer(&s, &format!("cmm_{}", "A".repeat(43)));
    let resp = forged.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // The ledger keeps the hash only; the list shows the grant.
    let (_, list) = get(&op, &s, "/v1/admin/monitors").await;
    let hash = list["monitors"][0]["token_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(hash.len(), 64);
    let bundle = s.export_bundle().await;
    assert!(!bundle.windows(token.len()).any(|w| w == token.as_bytes()));
    assert!(!captured_logs().contains(&token), "token in the logs");

    // Withdrawn: refused at once; the name may be granted again.
    let withdraw = s
        .app
        .cli(&["monitor", "withdraw", "prometheus", "--url", &s.base]);
    assert!(withdraw.status.success(), "{}", text(&withdraw.stderr));
    let resp = monitor.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let again = grant(&s, "prometheus-2", &["--ttl-days", "1"]);
    let again = bearer(&s, &again);
    assert_eq!(
        again.get(s.url("/metrics")).send().await.unwrap().status(),
        200
    );

    // Expired: refused once the clock passes expires_at.
    s.clock.advance(86_400 + 1);
    assert_eq!(
        again.get(s.url("/metrics")).send().await.unwrap().status(),
        401
    );

    // An existing --out file is never overwritten, and no token is granted for it.
    let taken = s.app.data().join("prometheus-2.token");
    let before = std::fs::read(&taken).unwrap();
    let path = taken.display().to_string();
    let run = s.app.cli(&[
        "monitor", "grant", "other", "--url", &s.base, "--out", &path,
    ]);
    assert!(!run.status.success());
    assert_eq!(std::fs::read(&taken).unwrap(), before);
    let (_, list) = get(&op, &s, "/v1/admin/monitors").await;
    assert!(!list.to_string().contains("\"other\""), "{list}");

    assert_audit_clean(&s).await;
    s.stop().await;
}
