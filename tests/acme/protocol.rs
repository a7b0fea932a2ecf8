//! The protocol end to end with the harness client: account with EAB, a pre-authorized
//! order, finalization through the ledger, ARI before and after revocation, revocation
//! by account and by certificate key, key rollover and deactivation, all ledger events,
//! and the exported ledger passing the offline auditor.

use credmint_ledger::event::AcmeAccountChange;
use credmint_ledger::Event;
use serde_json::json;

use crate::common::{genesis_key_of, leaf_serial, openssl, openssl_ocsp, TestAppliance};
use crate::harness::{acme_integration, b64, eab, new_key, sign, Client};

fn pem_to_der(pem: &str) -> Vec<u8> {
    let first = pem::parse_many(pem).unwrap().remove(0);
    first.contents().to_vec()
}

/// RFC 9773 certificate id of a leaf: base64url(AKI keyIdentifier).base64url(serial).
fn ari_id(der: &[u8]) -> String {
    use x509_parser::prelude::*;
    let (_, cert) = parse_x509_certificate(der).unwrap();
    let aki = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    format!("{}.{}", b64(&aki), b64(cert.raw_serial()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_order_finalize_ari_revoke_rollover_deactivate() {
    let s = TestAppliance::new("acme-proto").serve().await;
    acme_integration(&s, "acme-pre", &["pre.acme.test", "alt.acme.test"], true).await;
    let (kid, hmac) = eab(&s, "acme-pre").await;

    let mut c = Client::new(&s).await;
    assert_eq!(c.directory["meta"]["externalAccountRequired"], true);
    let a = c.register(&kid, &hmac).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["status"], "valid");
    assert_eq!(a.body["integration"], "acme-pre");
    let account_url = a.location.clone().unwrap();
    // The same key again: the existing account (200), no second binding.
    let mut again = Client::new(&s).await;
    again.set_key(c.key().clone());
    let url = again.url("newAccount");
    let a2 = again
        .post(&url, Some(&json!({"onlyReturnExisting": true})))
        .await;
    assert_eq!(
        (a2.status, a2.location.as_deref()),
        (200, Some(account_url.as_str())),
        "{}",
        a2.text
    );

    // Pre-authorized: the order is ready at once, no challenge.
    let order = c
        .new_order(
            &["pre.acme.test", "alt.acme.test"],
            json!({"profile": "server"}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    assert_eq!(order.body["status"], "ready", "{}", order.text);
    let authz_url = order.body["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let authz = c.post(&authz_url, None).await;
    assert_eq!(authz.body["status"], "valid", "{}", authz.text);

    let (fin, chain) = c
        .finalize(&order, &["alt.acme.test", "pre.acme.test"])
        .await;
    assert_eq!(fin.status, 200, "{}", fin.text);
    assert_eq!(fin.body["status"], "valid");
    let chain = chain.unwrap();
    let dir = s.app.dir.path();
    let leaf = dir.join("leaf.pem");
    std::fs::write(&leaf, &chain).unwrap();
    let ca = s.app.data().join("ca.pem");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-purpose",
        "sslserver",
        leaf.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", leaf.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        text.contains("DNS:pre.acme.test") && text.contains("DNS:alt.acme.test"),
        "{text}"
    );
    assert!(
        text.contains("URI:spiffe://test.credmint.local/prod/acme-pre"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication")
            && !text.contains("TLS Web Client Authentication"),
        "server profile: {text}"
    );
    let der = pem_to_der(&chain);
    let serial = leaf_serial(&chain);

    // The issuance is a ledger event by the account, of the account's integration.
    let records = s.records();
    let account_id = account_url.rsplit('/').next().unwrap().to_string();
    let issued = records.iter().find(|r| matches!(&r.event, Event::CertificateIssued(c) if hex::encode(&c.serial) == serial.to_lowercase())).unwrap();
    assert_eq!(issued.actor, format!("acme:{account_id}"));
    assert!(records.iter().any(|r| matches!(&r.event, Event::AcmeAccountCreated(a) if a.account == account_id && a.integration == "acme-pre" && a.eab_kid == kid)));

    // ARI: a window in the future, then "now" once revoked.
    let ari_url = format!("{}/{}", c.url("renewalInfo"), ari_id(&der));
    let ari: serde_json::Value = c
        .http
        .get(&ari_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let start = ari["suggestedWindow"]["start"]
        .as_str()
        .unwrap()
        .to_string();
    let now = time::OffsetDateTime::now_utc();
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(
        parse(&start) > now,
        "fresh certificate: renew later ({ari})"
    );

    // Revocation by the certificate's key is refused for a key that is not it...
    let revoke_url = c.url("revokeCert");
    let stranger = new_key();
    let nonce = c.fresh_nonce().await;
    let jws = sign(
        &stranger,
        &json!({"alg": "ES256", "jwk": crate::harness::jwk(&stranger), "nonce": nonce, "url": revoke_url}),
        Some(&json!({"certificate": b64(&der)})),
    );
    let r = c.post_raw(&revoke_url, &jws).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    // ... and by the account it works (reason keyCompromise).
    let r = c
        .post(
            &revoke_url,
            Some(&json!({"certificate": b64(&der), "reason": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .post(
            &revoke_url,
            Some(&json!({"certificate": b64(&der), "reason": 1})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem()),
        (400, "alreadyRevoked"),
        "{}",
        r.text
    );
    let (_, out) = openssl_ocsp(
        s.running.as_ref().unwrap().addr.port(),
        ca.to_str().unwrap(),
        leaf.to_str().unwrap(),
    );
    assert!(out.contains(": revoked"), "{out}");
    let ari: serde_json::Value = c
        .http
        .get(&ari_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let end = ari["suggestedWindow"]["end"].as_str().unwrap();
    assert!(
        parse(end) <= now + time::Duration::minutes(2),
        "revoked: renew now ({ari})"
    );

    // Key rollover: the new key acts for the account, the old one no longer does.
    let new = new_key();
    let key_change = c.url("keyChange");
    let inner = sign(
        &new,
        &json!({"alg": "ES256", "jwk": crate::harness::jwk(&new), "url": key_change}),
        Some(&json!({"account": account_url, "oldKey": c.jwk()})),
    );
    let r = c.post(&key_change, Some(&inner)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c.post(&account_url, None).await;
    assert_eq!(
        (r.status, r.problem()),
        (403, "unauthorized"),
        "old key: {}",
        r.text
    );
    let old_key = c.key().clone();
    c.set_key(new);
    let r = c.post(&account_url, None).await;
    assert_eq!(r.status, 200, "new key: {}", r.text);
    // The replaced key does not even find the account any more.
    let mut stale = Client::new(&s).await;
    stale.set_key(old_key);
    let url = stale.url("newAccount");
    let r = stale
        .post(&url, Some(&json!({"onlyReturnExisting": true})))
        .await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    assert!(r.location.is_none(), "{:?}", r.location);

    // Deactivating an authorization of a ready order makes the order invalid.
    let spare = c.new_order(&["pre.acme.test"], json!({})).await;
    assert_eq!(spare.body["status"], "ready", "{}", spare.text);
    let spare_authz = spare.body["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(&spare_authz, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.body["status"], "deactivated", "{}", r.text);
    let spare_url = spare.location.clone().unwrap();
    let r = c.post(&spare_url, None).await;
    assert_eq!(r.body["status"], "invalid", "{}", r.text);
    let (r, _) = c.finalize(&spare, &["pre.acme.test"]).await;
    assert_eq!(
        (r.status, r.problem()),
        (403, "orderNotReady"),
        "{}",
        r.text
    );

    // Deactivation is final.
    let r = c
        .post(&account_url, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("deactivated")),
        "{}",
        r.text
    );
    let r = c.new_order(&["pre.acme.test"], json!({})).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    let changes: Vec<AcmeAccountChange> = s
        .records()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::AcmeAccountChanged(c) if c.account == account_id => Some(c.change),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            changes.as_slice(),
            [
                AcmeAccountChange::KeyChanged { .. },
                AcmeAccountChange::Deactivated
            ]
        ),
        "{changes:?}"
    );

    let key = genesis_key_of(&s.state().ledger);
    s.assert_ledger_verifies(key).await;
    s.stop().await;
}

/// RFC 9773 §5: `replaces` must name a certificate of the account (within its
/// integration), and one certificate is replaced once: a second order naming it gets
/// 409 alreadyReplaced until the first order fails, and for good once it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaces_names_an_own_certificate_once() {
    let s = TestAppliance::new("acme-replaces").serve().await;
    acme_integration(&s, "acme-rep", &["rep.acme.test"], true).await;
    acme_integration(&s, "acme-else", &["else.acme.test"], true).await;
    let (mut accounts, mut urls) = (Vec::new(), Vec::new());
    for integration in ["acme-rep", "acme-rep", "acme-else"] {
        let (kid, hmac) = eab(&s, integration).await;
        let mut c = Client::new(&s).await;
        let a = c.register(&kid, &hmac).await;
        assert_eq!(a.status, 201, "{}", a.text);
        accounts.push(c);
        urls.push(a.location.unwrap());
    }
    let [mut a, mut sibling, mut stranger] = <[Client; 3]>::try_from(accounts).ok().unwrap();
    let names = ["rep.acme.test"];
    let order = a.new_order(&names, json!({})).await;
    let (_, chain) = a.finalize(&order, &names).await;
    let id = ari_id(&pem_to_der(&chain.unwrap()));
    let replacing = json!({ "replaces": id });

    for (c, own, who) in [
        (&mut sibling, "rep.acme.test", "another account"),
        (&mut stranger, "else.acme.test", "another integration"),
    ] {
        let r = c.new_order(&[own], replacing.clone()).await;
        assert_eq!(
            (r.status, r.problem()),
            (403, "unauthorized"),
            "{who}: {}",
            r.text
        );
    }
    let unknown = format!("{}.{}", id.split('.').next().unwrap(), b64(&[0x7f; 16]));
    for bad in ["no-dot", unknown.as_str()] {
        let r = a.new_order(&names, json!({ "replaces": bad })).await;
        assert_eq!(
            (r.status, r.problem()),
            (400, "malformed"),
            "{bad}: {}",
            r.text
        );
    }

    let first = a.new_order(&names, replacing.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = a.new_order(&names, replacing.clone()).await;
    assert_eq!(
        (again.status, again.problem()),
        (409, "alreadyReplaced"),
        "{}",
        again.text
    );
    // The first order fails (its authorization is given up): the certificate is free again.
    let authz = first.body["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = a
        .post(&authz, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.body["status"], "deactivated", "{}", r.text);
    let second = a.new_order(&names, replacing.clone()).await;
    assert_eq!(second.status, 201, "{}", second.text);
    let (fin, _) = a.finalize(&second, &names).await;
    assert_eq!(fin.body["status"], "valid", "{}", fin.text);
    let after = a.new_order(&names, replacing).await;
    assert_eq!(
        (after.status, after.problem()),
        (409, "alreadyReplaced"),
        "{}",
        after.text
    );
    // An order without `replaces` is unaffected.
    let plain = a.new_order(&names, json!({})).await;
    assert_eq!(plain.status, 201, "{}", plain.text);

    // An operator deactivates the sibling account with the CLI: a ledger event by the
    // operator, after which the account's key is refused; a second time is a conflict.
    let sibling_id = urls[1].rsplit('/').next().unwrap().to_string();
    let deactivate = || {
        let out = s
            .app
            .cli(&["acme", "deactivate", &sibling_id, "--url", &s.base]);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = deactivate();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("\"integration\": \"acme-rep\""), "{out}");
    let r = sibling.new_order(&names, json!({})).await;
    assert_eq!((r.status, r.problem()), (403, "unauthorized"), "{}", r.text);
    let (code, _, err) = deactivate();
    assert_ne!(code, Some(0));
    assert!(err.contains("already deactivated"), "{err}");
    let records = s.records();
    assert!(records.iter().any(|r| r.actor.starts_with("operator:")
        && matches!(&r.event, Event::AcmeAccountChanged(c)
            if c.account == sibling_id && c.change == AcmeAccountChange::Deactivated)));
}
