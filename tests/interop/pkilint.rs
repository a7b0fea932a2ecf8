//! pkilint (PyPI, pinned in deploy/lib.sh) over everything the appliance signs: the CA
//! certificate, a workload leaf, an operator certificate, the CRL and an OCSP response.
//! Zero findings of severity ERROR or worse are allowed; warnings are listed in the
//! failure message of the guard test and in the README.

use std::process::Command;

use serde_json::Value;

use crate::common::{openssl, Served};
use crate::support::registered_workload;
use crate::{leaf_pem, public_appliance, require, write, PUBLIC_URL};

/// `(severity, code, node path, message)` of every finding at or above WARNING.
type Finding = (String, String, String, String);

fn lint(tool: &str, extra: &[&str], file: &str) -> Vec<Finding> {
    let out = Command::new(require(tool))
        .arg("lint")
        .args(extra)
        .args(["-s", "WARNING", "-f", "JSON", file])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{tool} {file}: not a JSON report ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut findings = Vec::new();
    for result in report["results"].as_array().expect("results") {
        for f in result["finding_descriptions"].as_array().expect("findings") {
            findings.push((
                f["severity"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                result["node_path"].as_str().unwrap_or_default().to_string(),
                f["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    // pkilint exits non-zero exactly when it reported something.
    assert_eq!(
        out.status.success(),
        findings.is_empty(),
        "{tool}: {stdout}"
    );
    findings
}

/// The one ERROR pkilint 0.13.3 reports that is not a defect: its URI check
/// (`validators.url`) accepts only a fixed list of schemes (http, https, ftp, ...), so
/// the SPIFFE ID URI SAN every X.509-SVID must carry is "invalid URI syntax". The
/// exemption is exact (code, node, message naming the SPIFFE ID) and earned: the same URI
/// with the scheme swapped for https must pass that very check.
fn is_spiffe_scheme_false_positive(finding: &Finding) -> bool {
    let (severity, code, node, message) = finding;
    let Some(uri) = message
        .strip_prefix("Invalid URI syntax: \"")
        .and_then(|m| m.strip_suffix('"'))
    else {
        return false;
    };
    if severity != "ERROR"
        || code != "pkix.invalid_uri_syntax"
        || !node.ends_with("subjectAltName.0.uniformResourceIdentifier")
        || !uri.starts_with("spiffe://")
    {
        return false;
    }
    let python = require("lint_pkix_cert").with_file_name("python");
    let https = uri.replacen("spiffe://", "https://", 1);
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, validators; sys.exit(0 if validators.url(sys.argv[1]) is True else 1)",
            &https,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{uri}: pkilint objects to more than the scheme ({https} fails too): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Findings worse than WARNING, less the SPIFFE-scheme false positive.
fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.0 != "WARNING" && !is_spiffe_scheme_false_positive(f))
        .collect()
}

fn der_of(dir: &std::path::Path, name: &str, pem_path: &str) -> String {
    let out = dir.join(name);
    let (ok, text) = openssl(&[
        "x509",
        "-in",
        pem_path,
        "-outform",
        "DER",
        "-out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    out.to_string_lossy().into_owned()
}

/// Fetches an OCSP response for `leaf` (issued by `ca`) with openssl, DER into `out`.
fn ocsp_response(s: &Served, dir: &std::path::Path, ca: &str, leaf: &str, out: &str) -> String {
    let port = s.running.as_ref().unwrap().addr.port();
    let path = dir.join(out);
    let (ok, text) = openssl(&[
        "ocsp",
        "-issuer",
        ca,
        "-cert",
        leaf,
        "-CAfile",
        ca,
        "-url",
        &format!("https://127.0.0.1:{port}/ocsp"),
        "-respout",
        path.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("Response verify OK"), "{text}");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkilint_finds_no_error_in_ca_leaf_operator_crl_and_ocsp() {
    let s = public_appliance("pkilint").serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = write(dir, "ca.pem", &s.ca_pem);
    let workload = registered_workload(&s, "lint-me").await;
    let leaf = write(dir, "leaf.pem", leaf_pem(&workload.chain_pem));
    let (_, text) = openssl(&["x509", "-in", &leaf, "-noout", "-text"]);
    assert!(text.contains(&format!("URI:{PUBLIC_URL}/ocsp")), "{text}");
    assert!(text.contains(&format!("URI:{PUBLIC_URL}/crl")), "{text}");
    let operator = s.app.data().join("operator-admin.pem");
    let operator = operator.to_str().unwrap();

    let crl_resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    assert_eq!(crl_resp.status(), 200);
    let crl = write(dir, "crl.der", crl_resp.bytes().await.unwrap());
    let good = ocsp_response(&s, dir, &ca, &leaf, "ocsp-good.der");

    let mut report = Vec::new();
    let mut failed = Vec::new();
    let cert_tool = ("lint_pkix_cert", &[][..]);
    let crl_tool = ("lint_crl", &["-t", "CRL", "-p", "PKIX"][..]);
    let ocsp_tool = ("lint_ocsp_response", &[][..]);
    for (what, (tool, extra), file) in [
        ("CA certificate", cert_tool, der_of(dir, "ca.der", &ca)),
        ("workload leaf", cert_tool, der_of(dir, "leaf.der", &leaf)),
        (
            "operator certificate",
            cert_tool,
            der_of(dir, "op.der", operator),
        ),
        ("CRL", crl_tool, crl),
        ("OCSP response (good)", ocsp_tool, good),
    ] {
        let findings = lint(tool, extra, &file);
        if !errors(&findings).is_empty() {
            failed.push(what);
        }
        report.push(format!("{what}: {findings:?}"));
    }
    assert!(
        failed.is_empty(),
        "pkilint errors in {failed:?}:\n{}",
        report.join("\n")
    );
    eprintln!(
        "pkilint findings at WARNING or above (the SPIFFE-scheme false positive is exempted):\n{}",
        report.join("\n")
    );

    // A revoked certificate: the CRL entry and the OCSP `revoked` answer lint clean too.
    let resp = workload
        .client(&s)
        .post(s.url("/v1/revoke"))
        .json(&serde_json::json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let crl_resp = s.anonymous().get(s.url("/crl")).send().await.unwrap();
    let crl = write(dir, "crl-revoked.der", crl_resp.bytes().await.unwrap());
    let revoked = ocsp_response(&s, dir, &ca, &leaf, "ocsp-revoked.der");
    let (_, text) = openssl(&["ocsp", "-respin", &revoked, "-resp_text", "-noverify"]);
    assert!(text.contains("Cert Status: revoked"), "{text}");
    for (what, (tool, extra), file) in [
        ("CRL with an entry", crl_tool, crl),
        ("OCSP response (revoked)", ocsp_tool, revoked),
    ] {
        let findings = lint(tool, extra, &file);
        assert!(errors(&findings).is_empty(), "{what}: {findings:?}");
        eprintln!("{what}: {findings:?}");
    }

    // After a CA rotation: the new root, the cross-certificate, the new generation's CRL,
    // a leaf it signed and its OCSP answer.
    let resp = s
        .operator()
        .post(s.url("/v1/admin/keys/ca/rotate"))
        .json(&serde_json::json!({"reason": "lint rotation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let body: Value = resp.json().await.unwrap();
    let new_root = write(dir, "new.pem", body["ca_certificate"].as_str().unwrap());
    let cross = write(
        dir,
        "cross.pem",
        body["cross_certificate"].as_str().unwrap(),
    );
    let gen1 = registered_workload(&s, "lint-gen1").await;
    let leaf1 = write(dir, "leaf1.pem", leaf_pem(&gen1.chain_pem));
    let crl_resp = s.anonymous().get(s.url("/crl/r1")).send().await.unwrap();
    assert_eq!(crl_resp.status(), 200);
    let crl1 = write(dir, "crl1.der", crl_resp.bytes().await.unwrap());
    let ocsp1 = ocsp_response(&s, dir, &new_root, &leaf1, "ocsp1.der");
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for (what, (tool, extra), file) in [
        ("rotated root", cert_tool, der_of(dir, "new.der", &new_root)),
        (
            "cross-certificate",
            cert_tool,
            der_of(dir, "cross.der", &cross),
        ),
        (
            "generation-1 leaf",
            cert_tool,
            der_of(dir, "leaf1.der", &leaf1),
        ),
        ("generation-1 CRL", crl_tool, crl1),
        ("generation-1 OCSP response", ocsp_tool, ocsp1),
    ] {
        let findings = lint(tool, extra, &file);
        if !errors(&findings).is_empty() {
            failed.push(what);
        }
        report.push(format!("{what}: {findings:?}"));
    }
    assert!(
        failed.is_empty(),
        "pkilint errors in {failed:?}:\n{}",
        report.join("\n")
    );
    eprintln!("{}", report.join("\n"));
    s.stop().await;
}

/// Guards the test above: pkilint is really run and really reports errors.
#[test]
fn pkilint_reports_an_error_for_a_broken_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let cert = dir.path().join("bad.der");
    // An end-entity certificate asserting keyCertSign, with an empty subject and no SAN.
    let (ok, text) = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ed25519",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/",
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-outform",
        "DER",
        "-out",
        cert.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let findings = lint("lint_pkix_cert", &[], cert.to_str().unwrap());
    assert!(
        findings.iter().any(|(sev, code, _, _)| sev == "ERROR"
            && code == "pkix.ee_certificate_keycertsign_keyusage_set"),
        "{findings:?}"
    );
}
