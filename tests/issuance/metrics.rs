//! `GET /metrics` after real traffic over HTTPS: the counters moved with the right labels,
//! histograms have buckets, routes are patterns, and `promtool check metrics` (the
//! Prometheus project's own linter) finds nothing; then a real Prometheus server scrapes
//! the appliance with a monitoring token and with the operator certificate.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    free_port, leaf_serial, metric_value, openssl_csr, openssl_ocsp, require_tool, run_with_stdin,
    TestAppliance,
};
use crate::support::registered_workload;

/// `promtool check metrics` on `text`: success and no problem reported at all.
fn promtool_check(text: &str) {
    let mut promtool = Command::new(require_tool("promtool"));
    promtool.args(["check", "metrics"]);
    let out = run_with_stdin(promtool, text.as_bytes());
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_issuance_tokens_revocation_and_ocsp_and_pass_promtool() {
    require_tool("promtool");
    let s = TestAppliance::new("metrics").serve().await;
    let before = s.scrape_metrics().await;
    promtool_check(&before);

    let w = registered_workload(&s, "metered").await;
    assert_eq!(w.mint_token(&s).await.status(), 201);
    let renewal = openssl_csr("ec", "");
    let resp = w
        .client(&s)
        .post(s.url("/v1/renew"))
        .json(&serde_json::json!({ "csr": renewal.csr_pem }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = (dir.path().join("ca.pem"), dir.path().join("leaf.pem"));
    std::fs::write(&ca, &s.ca_pem).unwrap();
    std::fs::write(&leaf, &w.chain_pem).unwrap();
    let port = s.running.as_ref().unwrap().addr.port();
    let (ok, out) = openssl_ocsp(port, ca.to_str().unwrap(), leaf.to_str().unwrap());
    assert!(ok && out.contains(": good"), "{out}");
    let serial = leaf_serial(&w.chain_pem);
    let resp = s.revoke_certificate(&serial, "keyCompromise").await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let text = s.scrape_metrics().await;
    promtool_check(&text);
    for (series, expected) in [
        ("credmint_certificates_issued_total{class=\"routine\"}", 1.0),
        ("credmint_certificates_renewed_total{class=\"routine\"}", 1.0),
        ("credmint_tokens_issued_total{class=\"routine\"}", 1.0),
        (
            "credmint_revocations_total{class=\"routine\",credential=\"certificate\"}",
            1.0,
        ),
        (
            "credmint_http_requests_total{method=\"POST\",route=\"/v1/tokens\",status=\"201\"}",
            1.0,
        ),
        (
            "credmint_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/tokens\",status=\"201\",le=\"+Inf\"}",
            1.0,
        ),
        (
            "credmint_http_requests_total{method=\"POST\",route=\"/v1/admin/certificates/{serial}/revoke\",status=\"200\"}",
            1.0,
        ),
        ("credmint_ocsp_responses_total{status=\"successful\"}", 1.0),
        ("credmint_ocsp_cache_lookups_total{result=\"miss\"}", 1.0),
        ("credmint_hsm_available", 1.0),
    ] {
        assert_eq!(metric_value(&text, series), expected, "{series}");
    }
    assert!(
        !text.contains(&serial),
        "a raw path reached the labels:\n{text}"
    );
    // Histograms: buckets up to +Inf whose count matches, for HSM, pool and ledger.
    for histogram in [
        "credmint_hsm_sign_duration_seconds",
        "credmint_hsm_session_wait_duration_seconds",
        "credmint_ledger_commit_duration_seconds",
        "credmint_ledger_batch_commands",
    ] {
        let count = metric_value(&text, &format!("{histogram}_count"));
        assert!(count >= 3.0, "{histogram}: {count}");
        assert_eq!(
            metric_value(&text, &format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            count
        );
        let buckets = text
            .lines()
            .filter(|l| l.starts_with(&format!("{histogram}_bucket{{")))
            .count();
        assert!(buckets >= 10, "{histogram}: {buckets} buckets");
    }
    let grew = |name: &str| metric_value(&text, name) > metric_value(&before, name);
    assert!(grew("credmint_ledger_records") && grew("credmint_hsm_sign_duration_seconds_count"));
    let now = s.clock.unix() as f64;
    for expiry in [
        "credmint_ca_certificate_expiry_timestamp_seconds{ca_generation=\"0\"}",
        "credmint_server_certificate_expiry_timestamp_seconds",
    ] {
        assert!(metric_value(&text, expiry) > now + 86_400.0, "{expiry}");
    }
    assert!(metric_value(&text, "credmint_sequencer_queue_capacity_commands") >= 1.0);
    assert!(metric_value(&text, "credmint_ledger_checkpoint_age_seconds") >= 0.0);
    let build = format!(
        "credmint_build_info{{version=\"{}\",target=\"{}-{}\"}}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    );
    assert_eq!(metric_value(&text, &build), 1.0);
    // The signal counters keep their names.
    assert_eq!(
        metric_value(&text, "credmint_signals_total{kind=\"volume_spike\"}"),
        0.0
    );
    assert!(metric_value(&text, "process_resident_memory_bytes") > 1e6);
    assert!(metric_value(&text, "process_open_fds") > 3.0);
    assert!(metric_value(&text, "process_cpu_seconds_total") > 0.0);
    let started = metric_value(&text, "process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 3600.0, "{started}");
    s.stop().await;
}

/// A `prometheus` server child process; killed on drop.
struct PrometheusServer(std::process::Child);

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Asks Prometheus' HTTP API for `query`; the result vector (empty until scraped).
async fn prometheus_query(api: &str, query: &str) -> Vec<serde_json::Value> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Ok(resp) = reqwest::Client::new()
        .get(format!("{api}/api/v1/query?query={encoded}"))
        .send()
        .await
    else {
        return Vec::new();
    };
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_server_scrapes_with_a_monitoring_token_and_with_the_operator_certificate(
) {
    let prometheus = require_tool("prometheus");
    let s = TestAppliance::new("prometheus").serve().await;
    let w = registered_workload(&s, "scraped").await;
    assert_eq!(w.mint_token(&s).await.status(), 201);
    let dir = tempfile::tempdir().unwrap();
    let data = s.app.data();
    let port = s.running.as_ref().unwrap().addr.port();
    // The read-only monitoring role, as an operator deploys it.
    let resp = s
        .operator()
        .post(s.url("/v1/admin/monitors"))
        .json(&serde_json::json!({"name": "prometheus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let grant: serde_json::Value = resp.json().await.unwrap();
    let token_file = dir.path().join("credmint.token");
    std::fs::write(&token_file, grant["token"].as_str().unwrap()).unwrap();
    // Two jobs: the monitoring token (bearer) and the operator certificate (mTLS).
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: credmint
    scheme: https
    authorization:
      credentials_file: {token}
    tls_config:
      ca_file: {ca}
      server_name: localhost
    static_configs:
      - targets: ["127.0.0.1:{port}"]
  - job_name: credmint-operator
    scheme: https
    tls_config:
      ca_file: {ca}
      cert_file: {cert}
      key_file: {key}
      server_name: localhost
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"#,
        token = token_file.display(),
        ca = data.join("ca.pem").display(),
        cert = data.join("operator-admin.pem").display(),
        key = data.join("operator-admin-key.pem").display(),
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let _server = PrometheusServer(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = format!("http://{web}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut up, mut tokens) = (Vec::new(), Vec::new());
    while Instant::now() < deadline {
        up = prometheus_query(&api, "up").await;
        tokens = prometheus_query(&api, "credmint_tokens_issued_total").await;
        if up.len() == 2 && up.iter().all(|r| r["value"][1] == "1") && tokens.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for job in ["credmint", "credmint-operator"] {
        let of = |rs: &[serde_json::Value]| {
            rs.iter()
                .find(|r| r["metric"]["job"] == job)
                .cloned()
                .unwrap_or_else(|| panic!("no {job} series in {rs:?}"))
        };
        assert_eq!(of(&up)["value"][1], "1", "{job} not up: {up:?}");
        let t = of(&tokens);
        assert_eq!(t["metric"]["class"], "routine", "{t}");
        assert_eq!(t["value"][1], "1", "{t}");
    }
    s.stop().await;
}
