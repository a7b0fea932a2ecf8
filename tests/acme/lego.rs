//! lego (Debian's package) against the ACME server: http-01 validated for real against
//! lego's own listener, renewal and revocation; pre-authorized names with a webroot lego
//! could not write to (so a challenge would fail); each certificate verified by openssl
//! and found by the offline auditor under its integration.

use std::path::Path;
use std::process::Command;

use crate::common::{free_port, leaf_serial, openssl, require_tool, Served, TestAppliance};
use crate::harness::{acme_integration, audit_query, ca_file, eab, with_acme};

pub fn lego(s: &Served, path: &Path, kid: &str, hmac: &str, args: &[&str]) -> (bool, String) {
    lego_with_env(s, path, (kid, hmac), &[], args)
}

/// lego with `env` set too (a DNS provider's settings).
pub fn lego_with_env(
    s: &Served,
    path: &Path,
    (kid, hmac): (&str, &str),
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String) {
    let out = Command::new(require_tool("lego"))
        .args([
            "--server",
            &s.url("/acme/directory"),
            "--accept-tos",
            "--email",
            "ops@example.com",
        ])
        .args([
            "--eab",
            "--kid",
            kid,
            "--hmac",
            hmac,
            "--path",
            &path.display().to_string(),
        ])
        .args(args)
        .envs(env.iter().copied())
        .env("LEGO_CA_CERTIFICATES", ca_file(s))
        .output()
        .expect("run lego");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn verified_serial(s: &Served, cert: &Path) -> String {
    let (ok, out) = openssl(&["verify", "-CAfile", &ca_file(s), cert.to_str().unwrap()]);
    assert!(ok, "openssl verify {}: {out}", cert.display());
    leaf_serial(&std::fs::read_to_string(cert).unwrap()).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_obtains_renews_and_revokes() {
    let port = free_port();
    let s = with_acme(
        TestAppliance::new("acme-lego"),
        &format!("http01_port = {}", port),
    )
    .serve()
    .await;
    let dir = tempfile::tempdir().unwrap();

    acme_integration(&s, "lego-web", &["localhost"], false).await;
    let (kid, hmac) = eab(&s, "lego-web").await;
    let web = dir.path().join("web");
    let listen = format!("127.0.0.1:{port}");
    let http = [
        "--domains",
        "localhost",
        "--http",
        "--http.port",
        listen.as_str(),
    ];
    let (ok, out) = lego(&s, &web, &kid, &hmac, &[&http[..], &["run"]].concat());
    assert!(ok, "lego run: {out}");
    let cert = web.join("certificates/localhost.crt");
    let first = verified_serial(&s, &cert);

    // Renew when fewer than 30 days remain (always, for a 15-minute certificate).
    let (ok, out) = lego(
        &s,
        &web,
        &kid,
        &hmac,
        &[&http[..], &["renew", "--days", "30", "--no-random-sleep"]].concat(),
    );
    assert!(ok, "lego renew: {out}");
    let second = verified_serial(&s, &cert);
    assert_ne!(first, second, "renewal issued a new certificate");

    let (ok, out) = lego(
        &s,
        &web,
        &kid,
        &hmac,
        &["--domains", "localhost", "revoke", "--reason", "4"],
    );
    assert!(ok, "lego revoke: {out}");
    let (_, status) = s.certificate_status(&second).await;
    assert_eq!(status["status"], "revoked", "{status}");
    assert_eq!(status["reason"], "superseded", "{status}");

    // Pre-authorized: lego is never asked to solve anything.
    acme_integration(&s, "lego-pre", &["svc.lego.test"], true).await;
    let (kid, hmac) = eab(&s, "lego-pre").await;
    let pre = dir.path().join("pre");
    // A webroot that is a file: lego could not write a challenge response into it.
    let webroot = dir.path().join("not-a-directory");
    std::fs::write(&webroot, b"").unwrap();
    let webroot = webroot.display().to_string();
    let (ok, out) = lego(
        &s,
        &pre,
        &kid,
        &hmac,
        &[
            "--domains",
            "svc.lego.test",
            "--http",
            "--http.webroot",
            &webroot,
            "run",
        ],
    );
    assert!(ok, "lego pre-authorized: {out}");
    let pre_serial = verified_serial(&s, &pre.join("certificates/svc.lego.test.crt"));

    let creds = audit_query(&s, "lego-web").await;
    for serial in [&first, &second] {
        assert!(
            creds
                .iter()
                .any(|c| &c.id == serial && c.actor.starts_with("acme:")),
            "{serial} not in {creds:?}"
        );
    }
    assert!(audit_query(&s, "lego-pre")
        .await
        .iter()
        .any(|c| c.id == pre_serial && c.status == "live"));
    s.stop().await;
}
