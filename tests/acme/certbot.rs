//! certbot (Debian's package) against the ACME server: obtain with http-01 validated for
//! real (standalone), obtain for pre-authorized names (manual mode whose hook would fail
//! if it ran), renew, revoke; each certificate verified by openssl and found by the
//! offline auditor under its integration.

use std::path::Path;
use std::process::Command;

use crate::common::{free_port, leaf_serial, openssl, require_tool, Served, TestAppliance};
use crate::harness::{acme_integration, audit_query, ca_file, eab, with_acme};

/// certbot with its own config/work/logs dirs under `dir`, trusting the appliance CA.
pub fn certbot(s: &Served, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(require_tool("certbot"))
        .args(args)
        .args([
            "--non-interactive",
            "--config-dir",
            &dir.join("config").display().to_string(),
        ])
        .args(["--work-dir", &dir.join("work").display().to_string()])
        .args(["--logs-dir", &dir.join("logs").display().to_string()])
        .env("REQUESTS_CA_BUNDLE", ca_file(s))
        .output()
        .expect("run certbot");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `certbot certonly` against the appliance with an EAB key (kid, HMAC key).
pub fn certonly(
    s: &Served,
    dir: &Path,
    (kid, hmac): (&str, &str),
    args: &[&str],
) -> (bool, String) {
    let directory = s.url("/acme/directory");
    let common = [
        "certonly",
        "--agree-tos",
        "--register-unsafely-without-email",
        "--server",
        &directory,
        "--eab-kid",
        kid,
        "--eab-hmac-key",
        hmac,
    ];
    certbot(s, dir, &[&common[..], args].concat())
}

pub fn verify(s: &Served, cert: &Path) {
    let ca = ca_file(s);
    let (ok, out) = openssl(&["verify", "-CAfile", &ca, cert.to_str().unwrap()]);
    assert!(ok, "openssl verify {}: {out}", cert.display());
}

pub fn serial_of(path: &Path) -> String {
    leaf_serial(&std::fs::read_to_string(path).unwrap()).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_obtains_renews_and_revokes() {
    // http-01 is validated on a port certbot can bind without root.
    let port = free_port();
    let s = with_acme(
        TestAppliance::new("acme-certbot"),
        &format!("http01_port = {}", port),
    )
    .serve()
    .await;
    let directory = s.url("/acme/directory");
    let dir = tempfile::tempdir().unwrap();

    // 1. http-01 validated for real: certbot's standalone listener on 127.0.0.1.
    acme_integration(&s, "cb-web", &["localhost"], false).await;
    let (kid, hmac) = eab(&s, "cb-web").await;
    let web = dir.path().join("web");
    let (ok, out) = certonly(
        &s,
        &web,
        (&kid, &hmac),
        &[
            "--standalone",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &port.to_string(),
            "-d",
            "localhost",
            "--cert-name",
            "web",
        ],
    );
    assert!(ok, "certbot standalone: {out}");
    let live = web.join("config/live/web");
    verify(&s, &live.join("fullchain.pem"));
    let first = serial_of(&live.join("cert.pem"));

    // Renewal (certbot 2.1 predates ARI: forced), same account, http-01 again.
    let (ok, out) = certbot(
        &s,
        &web,
        &[
            "renew",
            "--cert-name",
            "web",
            "--force-renewal",
            "--no-random-sleep-on-renew",
            "--server",
            &directory,
        ],
    );
    assert!(ok, "certbot renew: {out}");
    let second = serial_of(&live.join("cert.pem"));
    assert_ne!(first, second, "renewal issued a new certificate");
    verify(&s, &live.join("fullchain.pem"));

    // Revocation by the account.
    let (ok, out) = certbot(
        &s,
        &web,
        &[
            "revoke",
            "--cert-name",
            "web",
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
            "--server",
            &directory,
        ],
    );
    assert!(ok, "certbot revoke: {out}");
    let (_, status) = s.certificate_status(&second).await;
    assert_eq!(status["status"], "revoked", "{status}");

    // 2. Pre-authorized names: no challenge at all (the manual hook would fail).
    acme_integration(&s, "cb-pre", &["api.cb.test"], true).await;
    let (kid, hmac) = eab(&s, "cb-pre").await;
    let pre = dir.path().join("pre");
    let (ok, out) = certonly(
        &s,
        &pre,
        (&kid, &hmac),
        &[
            "--manual",
            "--preferred-challenges",
            "http",
            "--manual-auth-hook",
            "/bin/false",
            "-d",
            "api.cb.test",
            "--cert-name",
            "pre",
        ],
    );
    assert!(ok, "certbot pre-authorized: {out}");
    let pre_cert = pre.join("config/live/pre/cert.pem");
    verify(&s, &pre_cert);
    let pre_serial = serial_of(&pre_cert);

    // The auditor lists each under its integration, obtained through its EAB key.
    let web_creds = audit_query(&s, "cb-web").await;
    for serial in [&first, &second] {
        let c = web_creds
            .iter()
            .find(|c| &c.id == serial)
            .unwrap_or_else(|| panic!("{serial} not in {web_creds:?}"));
        assert!(c.actor.starts_with("acme:"), "{c:?}");
    }
    assert_eq!(
        web_creds.iter().find(|c| c.id == second).unwrap().status,
        "revoked"
    );
    assert!(audit_query(&s, "cb-pre")
        .await
        .iter()
        .any(|c| c.id == pre_serial && c.status == "live"));
    s.stop().await;
}
