//! dns-01 (RFC 8555 §8.4) validated for real: certbot's and lego's RFC 2136 plugins
//! publish the TXT records to a Knot DNS server, the appliance asks that server
//! (`[acme] dns_resolvers`), and the certificates verify and show in the audit. Then the
//! failures, each with its ACME problem type: no record, a wrong record, a resolver that
//! does not answer.

use serde_json::json;

use crate::certbot::{certonly, serial_of, verify};
use crate::common::{Served, TestAppliance};
use crate::harness::{acme_integration, audit_query, challenge_of, eab, with_acme, Client};
use crate::knot::{Knot, TSIG_NAME};
use crate::lego::{lego_with_env, verified_serial};

async fn appliance(name: &str, knot: &Knot) -> Served {
    with_acme(
        TestAppliance::new(name),
        &format!("dns_resolvers = [\"{}\"]", knot.addr()),
    )
    .serve()
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_and_lego_prove_names_over_dns01() {
    let knot = Knot::start();
    let s = appliance("acme-dns", &knot).await;
    let dir = tempfile::tempdir().unwrap();
    acme_integration(
        &s,
        "dns-web",
        &["www.acme.test", "api.acme.test", "mail.acme.test"],
        false,
    )
    .await;

    // lego: its rfc2136 provider, finding the zone through the same server.
    let (kid, hmac) = eab(&s, "dns-web").await;
    let env = [
        ("RFC2136_NAMESERVER", knot.addr()),
        ("RFC2136_TSIG_ALGORITHM", "hmac-sha256.".to_string()),
        ("RFC2136_TSIG_KEY", format!("{TSIG_NAME}.")),
        ("RFC2136_TSIG_SECRET", knot.secret.clone()),
        ("RFC2136_PROPAGATION_TIMEOUT", "30".to_string()),
        ("RFC2136_POLLING_INTERVAL", "1".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let lego_dir = dir.path().join("lego");
    let (ok, out) = lego_with_env(
        &s,
        &lego_dir,
        (&kid, &hmac),
        &env,
        &[
            "--domains",
            "www.acme.test",
            "--domains",
            "api.acme.test",
            "--dns",
            "rfc2136",
            "--dns.resolvers",
            &knot.addr(),
            "--dns.disable-cp",
            "run",
        ],
    );
    assert!(ok, "lego dns-01: {out}");
    let lego_serial = verified_serial(&s, &lego_dir.join("certificates/www.acme.test.crt"));

    // certbot: its dns-rfc2136 plugin (Debian's python3-certbot-dns-rfc2136).
    let (kid, hmac) = eab(&s, "dns-web").await;
    let credentials = dir.path().join("rfc2136.ini");
    std::fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {}\n\
             dns_rfc2136_name = {TSIG_NAME}.\ndns_rfc2136_secret = {}\n\
             dns_rfc2136_algorithm = HMAC-SHA256\n",
            knot.port, knot.secret
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cb = dir.path().join("certbot");
    let (ok, out) = certonly(
        &s,
        &cb,
        (&kid, &hmac),
        &[
            "--authenticator",
            "dns-rfc2136",
            "--dns-rfc2136-credentials",
            &credentials.display().to_string(),
            "--dns-rfc2136-propagation-seconds",
            "1",
            "-d",
            "mail.acme.test",
            "--cert-name",
            "mail",
        ],
    );
    assert!(ok, "certbot dns-01: {out}");
    let live = cb.join("config/live/mail");
    verify(&s, &live.join("fullchain.pem"));
    let certbot_serial = serial_of(&live.join("cert.pem"));

    let creds = audit_query(&s, "dns-web").await;
    for serial in [&lego_serial, &certbot_serial] {
        assert!(
            creds
                .iter()
                .any(|c| &c.id == serial && c.actor.starts_with("acme:") && c.status == "live"),
            "{serial} not in {creds:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns01_failures_name_the_problem() {
    let mut knot = Knot::start();
    let s = appliance("acme-dns-refuse", &knot).await;
    acme_integration(
        &s,
        "dns-rf",
        &["none.acme.test", "bad.acme.test", "down.acme.test"],
        false,
    )
    .await;
    let (kid, hmac) = eab(&s, "dns-rf").await;
    let mut c = Client::new(&s).await;
    assert_eq!(c.register(&kid, &hmac).await.status, 201);
    let failed = |a: &crate::harness::Answer| {
        assert_eq!(a.body["status"], "invalid", "{}", a.text);
        let e = challenge_of(a, "dns-01")["error"].clone();
        (
            e["type"]
                .as_str()
                .unwrap()
                .trim_start_matches("urn:ietf:params:acme:error:")
                .to_string(),
            e["detail"].as_str().unwrap().to_string(),
        )
    };

    // No record at all.
    let order = c.new_order(&["none.acme.test"], json!({})).await;
    let (kind, detail) = failed(&c.validate(&order, "dns-01").await);
    assert_eq!(kind, "unauthorized", "{detail}");
    assert!(
        detail.contains("_acme-challenge.none.acme.test."),
        "{detail}"
    );

    // A record that is not the digest of this challenge's key authorization.
    knot.set_txt("_acme-challenge.bad.acme.test", Some("not-the-digest"));
    let order = c.new_order(&["bad.acme.test"], json!({})).await;
    let (kind, detail) = failed(&c.validate(&order, "dns-01").await);
    assert_eq!(kind, "incorrectResponse", "{detail}");
    assert!(detail.contains("not-the-digest"), "{detail}");
    let (r, _) = c.finalize(&order, &["bad.acme.test"]).await;
    assert_eq!(
        (r.status, r.problem()),
        (403, "orderNotReady"),
        "{}",
        r.text
    );

    // The resolver is gone: a dns problem, not a verdict on the record.
    knot.stop();
    let order = c.new_order(&["down.acme.test"], json!({})).await;
    let (kind, detail) = failed(&c.validate(&order, "dns-01").await);
    assert_eq!(kind, "dns", "{detail}");
    s.stop().await;
}
