//! The operator console (`GET /console`): operator input is escaped, anonymous callers
//! are refused, and a real headless Chromium (Selenium, system chromedriver, the CA
//! trusted through an NSS database) renders the test's data for a monitoring token and
//! for an operator certificate, and leaves a screenshot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::{openssl_csr, require_tool, Served, TestAppliance};
use crate::helpers::{assert_audit_clean, post, settle, token};
use crate::monitoring::{bearer, grant};
use crate::support::{enroll, enrollment_token, register, registered_workload, registration};

/// Where the browser test leaves its screenshot: stable, beside the build output.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("console-screenshot.png")
}

async fn console_html(
    client: &reqwest::Client,
    s: &Served,
) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = client.get(s.url("/console")).send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_escapes_operator_input_and_refuses_anonymous_callers() {
    let s = TestAppliance::new("console-escape").serve().await;
    let hostile = "<script>alert('owner')</script>";
    let mut reg = registration("hostile-owner");
    reg["business_owner"] = json!(hostile);
    reg["technical_owner"] = json!("\"><img src=x onerror=alert(1)>");
    assert_eq!(register(&s, &reg).await.status(), 201);
    let (status, _) = post(
        &s.operator(),
        &s,
        "/v1/admin/integrations/hostile-owner/changes",
        json!({"scopes": ["deploy:read", "deploy:write", "deploy:admin"],
               "reason": "</td></tr><script>alert('reason')</script>"}),
    )
    .await;
    assert_eq!(status, 202);

    let (status, headers, html) = console_html(&s.operator(), &s).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        html.contains("&lt;script&gt;alert('owner')&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;/td&gt;&lt;/tr&gt;&lt;script&gt;alert('reason')"));
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("data-name=\"hostile-owner\""));
    // Health as /healthz tells it.
    let (_, health) = crate::helpers::get(&s.anonymous(), &s, "/healthz").await;
    assert_eq!(health["hsm"], "ok");
    assert!(
        html.contains("<dd id=\"hsm-state\" class=\"ok\">ok</dd>"),
        "{html}"
    );
    assert!(html.contains("<dd id=\"ledger-state\" class=\"ok\">ok</dd>"));

    // A monitoring token reads it too, until withdrawn.
    let token = grant(&s, "console-reader", &[]);
    let (status, _, html) = console_html(&bearer(&s, &token), &s).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<span id=\"viewer\">monitor:console-reader</span>"));
    let resp = s
        .operator()
        .delete(s.url("/v1/admin/monitors/console-reader"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _, body) = console_html(&bearer(&s, &token), &s).await;
    assert_eq!(status, 401, "{body}");

    // No certificate: 401 before any data is read; a workload certificate: 403.
    let (status, _, body) = console_html(&s.anonymous(), &s).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("hostile-owner"));
    let w = registered_workload(&s, "console-workload").await;
    let (status, _, body) = console_html(&w.client(&s), &s).await;
    assert_eq!(status, 403, "{body}");
    s.stop().await;
}

/// Fails loudly, with the install line, when the browser stack is missing.
fn require_browser_stack() -> PathBuf {
    for tool in [
        "chromium",
        "chromedriver",
        "certutil",
        "pk12util",
        "openssl",
    ] {
        require_tool(tool);
    }
    let python = PathBuf::from("/usr/bin/python3");
    let selenium = Command::new(&python)
        .args(["-c", "import selenium"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        selenium,
        "/usr/bin/python3 cannot import selenium: apt-get install -y chromium chromium-driver \
         python3-selenium libnss3-tools (deploy/lib.sh ensure_test_deps does this)"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_renders_the_test_data_in_headless_chromium() {
    require_browser_stack();
    let s = TestAppliance::new("console-browser").serve().await;
    let name = "zebra-console-7f3a";
    let w = registered_workload(&s, name).await;
    for _ in 0..2 {
        assert_eq!(
            token(&w.client(&s), &s, &["deploy:read"], None).await.0,
            201
        );
    }
    // Something in every section: a pending change, an operator request, a signal (a
    // spent enrollment token presented again).
    assert_eq!(
        register(&s, &registration("quiet-batch")).await.status(),
        201
    );
    let (status, _) = post(
        &s.operator(),
        &s,
        &format!("/v1/admin/integrations/{name}/changes"),
        json!({"scopes": ["deploy:read", "deploy:write", "deploy:admin"], "reason": "CHG-77 release tooling"}),
    )
    .await;
    assert_eq!(status, 202);
    let csr = openssl_csr("ec", "");
    let (status, _) = post(
        &s.operator(),
        &s,
        "/v1/admin/operators",
        json!({"name": "carol", "csr": csr.csr_pem, "approval_ref": "CHG-OPS-9"}),
    )
    .await;
    assert_eq!(status, 202);
    let spent = enrollment_token(&s, "quiet-batch").await;
    assert_eq!(
        enroll(&s, &spent, &openssl_csr("ec", ""), None)
            .await
            .status(),
        201
    );
    assert_eq!(
        enroll(&s, &spent, &openssl_csr("ec", ""), None)
            .await
            .status(),
        401
    );
    settle(&s).await;

    // Read as a monitor (bearer token from `credmint monitor grant`, sent by CDP) and as
    // an operator (mTLS, the certificate picked from the NSS database).
    let token_file = s.app.data().join("console-browser.token");
    grant(&s, "console-browser", &[]);
    let data = s.app.data();
    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let as_monitor = browse(
        &s,
        vec!["--bearer-file".into(), token_file.into()],
        "monitor:console-browser",
        &shot,
    )
    .await;
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("console screenshot: {}", shot.display());
    println!("{as_monitor}");
    let issuer = s.app.config().identity.ca_common_name;
    let as_operator = browse(
        &s,
        vec![
            "--client-cert".into(),
            data.join("operator-admin.pem").into(),
            "--client-key".into(),
            data.join("operator-admin-key.pem").into(),
            "--issuer-cn".into(),
            issuer.into(),
        ],
        "operator:admin",
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-operator.png"),
    )
    .await;
    println!("{as_operator}");
    assert_audit_clean(&s).await;
    s.stop().await;
}

/// Runs `console_browse.py` on this appliance's console with `auth` (its authentication
/// arguments), expecting the test's data and `viewer` in the header; returns its report.
async fn browse(s: &Served, auth: Vec<OsString>, viewer: &str, shot: &Path) -> String {
    let python = require_browser_stack();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/governance/console_browse.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--url", &s.url("/console")])
        .arg("--ca")
        .arg(s.app.data().join("ca.pem"))
        .args(auth)
        .args(["--expect-viewer", viewer])
        .args(["--expect-integration", "zebra-console-7f3a"])
        .args(["--expect-integration", "quiet-batch"])
        // One certificate and two tokens of zebra, one certificate of quiet-batch.
        .args(["--expect-expiring", "4"])
        .arg("--screenshot")
        .arg(shot);
    let out = tokio::task::spawn_blocking(move || command.output().expect("run console_browse.py"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "browser check as {viewer} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
