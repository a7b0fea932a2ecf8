//! Go's crypto/x509 and crypto/tls (Debian golang-go, standard library only) as relying
//! party: `interop.go` is written into a temporary module and built with `go build`
//! (GOCACHE/GOPATH/HOME in temporary directories, GOFLAGS=-mod=mod, GOTOOLCHAIN=local,
//! GOPROXY=off: no network). Go parses and verifies workload and operator certificates for
//! clientAuth, presents a workload leaf with an ordinary `tls.Config.Certificates` to the
//! appliance's `POST /v1/tokens`, and a Go server with `tls.RequireAndVerifyClientCert`
//! accepts it. Before the governance OID moved to ordinary arcs, Go refused to parse
//! every credmint certificate; the legacy-OID case below shows what it did.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::common::{openssl, Served, TestAppliance};
use crate::support::{registered_workload, Enrolled};
use crate::{leaf_pem, require, write};

const GO_SOURCE: &str = include_str!("interop.go");

/// Builds the Go program once per test process; returns the binary.
fn interop_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let go = require("go");
        let root = tempfile::Builder::new()
            .prefix("credmint-go-")
            .tempdir()
            .unwrap()
            .keep();
        let src = root.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.go"), GO_SOURCE).unwrap();
        std::fs::write(
            src.join("go.mod"),
            "module credmint.example/interop\n\ngo 1.19\n",
        )
        .unwrap();
        let bin = root.join("interop");
        let mut cmd = Command::new(go);
        cmd.current_dir(&src)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".");
        for (var, dir) in [("HOME", "home"), ("GOCACHE", "cache"), ("GOPATH", "gopath")] {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            cmd.env(var, d);
        }
        let out = cmd
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOSUMDB", "off")
            .env("GOENV", "off")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "go build failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// Runs a subcommand: its JSON report, or its stderr when it failed.
fn go(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(interop_binary()).args(args).output().unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn go_ok(args: &[&str]) -> Value {
    go(args).unwrap_or_else(|e| panic!("go {args:?}: {e}"))
}

fn go_err(args: &[&str]) -> String {
    match go(args) {
        Ok(v) => panic!("go {args:?} should have failed: {v}"),
        Err(e) => e,
    }
}

/// A self-signed certificate and key from openssl (a CA credmint never heard of), with
/// optional extra `-addext` values. Returns (cert path, key path).
fn foreign_cert(dir: &Path, name: &str, addext: &[&str]) -> (String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=credmint test CA/O=credmint",
        "-days",
        "1",
        "-addext",
        "extendedKeyUsage=clientAuth",
        "-out",
        cert.to_str().unwrap(),
    ];
    for ext in addext {
        args.extend_from_slice(&["-addext", ext]);
    }
    let (ok, out) = openssl(&args);
    assert!(ok, "{out}");
    (
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

fn port(s: &Served) -> u16 {
    s.running.as_ref().unwrap().addr.port()
}

/// The Go client's `POST /v1/tokens` over mTLS; returns (status, body).
fn go_token(s: &Served, roots: &str, chain: &str, key: &str) -> (u64, Value) {
    let url = format!("https://127.0.0.1:{}/v1/tokens", port(s));
    let body = json!({"audience": "go-api", "scopes": ["deploy:read"]}).to_string();
    let out = go_ok(&["post", roots, chain, key, &url, &body]);
    let status = out["status"].as_u64().unwrap();
    let body = serde_json::from_str(out["body"].as_str().unwrap()).unwrap_or(Value::Null);
    (status, body)
}

fn files(dir: &Path, name: &str, w: &Enrolled) -> (String, String) {
    (
        write(dir, &format!("{name}.pem"), &w.chain_pem),
        write(dir, &format!("{name}-key.pem"), &w.csr.key_pem),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_and_uses_workload_and_operator_certificates() {
    interop_binary();
    let s = TestAppliance::new("go").serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = write(dir, "ca.pem", &s.ca_pem);
    let w = registered_workload(&s, "go-client").await;
    let (chain, key) = files(dir, "chain", &w);

    // crypto/x509: parses, verifies for clientAuth, sees the SVID and the extension.
    let report = go_ok(&["verify", &ca, &chain]);
    assert_eq!(
        report["uris"],
        json!(["spiffe://test.credmint.local/prod/go-client"])
    );
    assert_eq!(report["ocsp"], json!([s.url("/ocsp")]), "{report}");
    assert_eq!(report["crl"], json!([s.url("/crl")]), "{report}");
    assert_eq!(report["client_auth"], true);
    assert_eq!(report["unhandled_critical"], 0);
    assert_eq!(report["governance_critical"], false);
    let leaf_der = x509_der(&leaf_pem(&w.chain_pem));
    let governance = credmint::issue::Governance::parse_from_certificate(&leaf_der)
        .unwrap()
        .unwrap();
    assert_eq!(report["governance_hex"], hex::encode(governance.encode()));
    assert_eq!(governance.integration, "go-client");
    assert!(!report["chains"].as_array().unwrap().is_empty(), "{report}");

    // ... and refuses it under a CA with the same name but another key.
    let (foreign_ca, foreign_key) = foreign_cert(dir, "foreign", &[]);
    let err = go_err(&["verify", &foreign_ca, &chain]);
    assert!(err.contains("unknown authority"), "{err}");

    // crypto/tls client: mTLS with an ordinary tls.Config.Certificates to the appliance.
    let (status, body) = go_token(&s, &ca, &chain, &key);
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "{token}");

    // crypto/tls server: RequireAndVerifyClientCert with ClientCAs = the credmint CA
    // accepts the leaf, and refuses a client certificate from elsewhere.
    let seen = go_ok(&["serve-and-dial", &ca, &chain, &key]);
    assert_eq!(seen["status"], 200, "{seen}");
    assert_eq!(
        seen["peer_uris"],
        json!(["spiffe://test.credmint.local/prod/go-client"])
    );
    assert_eq!(seen["verified_len"], 2, "leaf + credmint root: {seen}");
    let err = go_err(&["serve-and-dial", &ca, &foreign_ca, &foreign_key]);
    assert!(err.contains("mTLS GET"), "{err}");

    // The operator certificate `init` wrote parses and verifies for clientAuth too.
    let operator = s.app.data().join("operator-admin.pem");
    let operator = operator.to_str().unwrap();
    let op = go_ok(&["verify", &ca, operator]);
    assert_eq!(
        op["uris"],
        json!(["spiffe://test.credmint.local/operator/admin"])
    );
    assert_eq!(op["client_auth"], true);
    assert!(!op["governance_hex"].as_str().unwrap().is_empty(), "{op}");
    assert_eq!(go_ok(&["parse", operator])["subject"], op["subject"]);

    // Why the OID moved: the same record under the legacy 2.25 UUID OID is a certificate
    // Go's parser refuses outright.
    let legacy = format!(
        "{}=DER:{}",
        credmint::issue::LEGACY_GOVERNANCE_OID_STR,
        hex::encode(governance.encode())
    );
    let (legacy_cert, _) = foreign_cert(dir, "legacy", &[&legacy]);
    let err = go_err(&["parse", &legacy_cert]);
    assert!(err.contains("malformed extension OID field"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_both_ca_generations_with_the_published_bundle() {
    interop_binary();
    let s = TestAppliance::new("go-rot").serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old_root = write(dir, "old.pem", &s.ca_pem);
    let w0 = registered_workload(&s, "go-gen0").await;
    let resp = s
        .operator()
        .post(s.url("/v1/admin/keys/ca/rotate"))
        .json(&json!({"reason": "interop rotation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let bundle_resp = s.anonymous().get(s.url("/v1/ca.pem")).send().await.unwrap();
    let bundle = write(dir, "bundle.pem", bundle_resp.text().await.unwrap());
    let w1 = registered_workload(&s, "go-gen1").await;
    let (chain0, key0) = files(dir, "chain0", &w0);
    let (chain1, key1) = files(dir, "chain1", &w1);
    assert_eq!(w1.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);

    // Two same-named roots in one pool: Go tells them apart and verifies both generations,
    // directly under each generation's root.
    for chain in [&chain0, &chain1] {
        let report = go_ok(&["verify", &bundle, chain]);
        let chains = report["chains"].as_array().unwrap();
        assert!(
            chains.iter().any(|c| c.as_array().unwrap().len() == 2),
            "{report}"
        );
    }
    let (status, body) = go_token(&s, &bundle, &chain1, &key1);
    assert_eq!(status, 201, "new-generation leaf: {body}");
    let (status, body) = go_token(&s, &bundle, &chain0, &key0);
    assert_eq!(status, 201, "old-generation leaf: {body}");
    let seen = go_ok(&["serve-and-dial", &bundle, &chain1, &key1]);
    assert_eq!(seen["status"], 200, "{seen}");

    // Go counts the self-issued cross-certificate against the old root's pathlen:0 (RFC
    // 5280 6.1.4 (l) exempts it; OpenSSL and rustls follow the RFC): a Go client trusting
    // only the old root cannot use a new-generation chain. Go relying parties must load
    // the bundle (README, Key rotation); this pins the behaviour so a change is noticed.
    let err = go_err(&["verify", &old_root, &chain1]);
    assert!(err.contains("too many intermediates"), "{err}");
    s.stop().await;
}

fn x509_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

/// Intermediate CA mode: Go trusts only the enterprise root (made with openssl) and
/// builds leaf -> credmint intermediate -> root from the chain the appliance returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_an_intermediate_mode_leaf_up_to_the_enterprise_root() {
    use crate::common::{free_port, openssl_root, openssl_sign_csr, p, text};
    interop_binary();
    let port = free_port();
    let app = TestAppliance::with_listen("go-inter", &format!("127.0.0.1:{port}"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let csr = p(dir, "ca.csr");
    let out = app.cli(&["init", "--ca-csr", &csr]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let root = openssl_root(dir, "root");
    let inter = openssl_sign_csr(dir, "root", &csr, "v3_ca", "intermediate.pem");
    let out = app.cli(&["ca", "import", &inter, "--chain", &root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (s, server) = Served::spawned_under_root(app, port, &std::fs::read(&root).unwrap());
    let w = registered_workload(&s, "go-inter").await;
    let chain = write(dir, "chain.pem", &w.chain_pem);
    let report = go_ok(&["verify", &root, &chain]);
    let chains = report["chains"].as_array().unwrap();
    assert_eq!(chains[0].as_array().unwrap().len(), 3, "{report}");
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:?}");
}
