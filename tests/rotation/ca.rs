//! CA key rotation: leaves from both generations verify during overlap (with the bundle,
//! with the old root alone plus the cross-certificate), mTLS with a pre-rotation
//! certificate keeps working, OCSP and the per-generation CRLs answer for both, and a
//! restart keeps the new CA.

use serde_json::json;

use crate::common::{client, openssl, openssl_csr, Served, TestAppliance};
use crate::support::{registered_workload, Enrolled};
use crate::util::{assert_custodial, leaf_pem, rotate, write};

fn ocsp(s: &Served, issuer: &str, bundle: &str, cert: &str) -> String {
    let url = format!(
        "https://127.0.0.1:{}/ocsp",
        s.running.as_ref().unwrap().addr.port()
    );
    let (ok, out) = openssl(&[
        "ocsp",
        "-issuer",
        issuer,
        "-CAfile",
        bundle,
        "-verify_other",
        issuer,
        "-url",
        &url,
        "-cert",
        cert,
    ]);
    assert!(ok, "openssl ocsp failed: {out}");
    assert!(out.contains("Response verify OK"), "{out}");
    out
}

async fn revoke_self(s: &Served, w: &Enrolled) {
    let resp = w
        .client(s)
        .post(s.url("/v1/revoke"))
        .json(&json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn crl_pem(s: &Served, dir: &std::path::Path, path: &str, name: &str, ca: &str) -> String {
    let resp = s.anonymous().get(s.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    let der = write(dir, &format!("{name}.der"), resp.bytes().await.unwrap());
    let (ok, out) = openssl(&[
        "crl", "-inform", "DER", "-in", &der, "-CAfile", ca, "-noout",
    ]);
    assert!(ok && out.contains("verify OK"), "{path}: {out}");
    let pem = dir.join(format!("{name}.pem"));
    let (ok, out) = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der,
        "-out",
        pem.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    pem.to_string_lossy().into_owned()
}

fn verify(args: &[&str]) -> (bool, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    openssl(&all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_keeps_both_generations_verifying_and_answering_status() {
    let s = TestAppliance::new("rot-ca").serve().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let old_root = write(dir, "old.pem", &s.ca_pem);
    let keep0 = registered_workload(&s, "keep0").await;
    let doomed0 = registered_workload(&s, "doomed0").await;

    let body = rotate(&s, "ca").await;
    assert_eq!(body["role"], "ca");
    assert_eq!(body["new_key"]["label"], "ca-r1");
    assert_eq!(body["ca_generation"], 1);
    assert!(body["crl_url"].as_str().unwrap().ends_with("/crl/r1"));
    assert!(body["old_key_retires_at"].is_string());
    assert_custodial(&s, "ca-r1");
    let new_root = write(dir, "new.pem", body["ca_certificate"].as_str().unwrap());
    let cross = write(
        dir,
        "cross.pem",
        body["cross_certificate"].as_str().unwrap(),
    );
    // Same subject, new key; the cross-certificate is self-issued (issuer = subject).
    let subject = |p: &str| openssl(&["x509", "-in", p, "-noout", "-subject"]).1;
    let issuer = |p: &str| openssl(&["x509", "-in", p, "-noout", "-issuer"]).1;
    assert_eq!(subject(&new_root), subject(&old_root));
    assert_eq!(subject(&cross), subject(&old_root));
    assert_eq!(
        issuer(&cross).trim_start_matches("issuer="),
        subject(&old_root).trim_start_matches("subject=")
    );
    let (ok, out) = verify(&["-CAfile", &old_root, &cross]);
    assert!(ok, "the old root certifies the new key: {out}");

    // ca.pem (file and route) is now the bundle of both roots.
    let bundle_text = std::fs::read_to_string(s.app.data().join("ca.pem")).unwrap();
    assert_eq!(bundle_text.matches("BEGIN CERTIFICATE").count(), 2);
    let served = s.anonymous().get(s.url("/v1/ca.pem")).send().await.unwrap();
    assert_eq!(served.text().await.unwrap(), bundle_text);
    let bundle = write(dir, "bundle.pem", &bundle_text);
    // Same-named roots are told apart by key identifier: each root's AKI is its own SKI,
    // the cross-certificate's AKI is the old root's SKI. With that each root verifies as
    // itself against the bundle in either order (what `openssl ocsp` does with the
    // signer of a response); the reversed bundle guards against relying on file order.
    // (SKI, AKI keyid) as `openssl x509 -ext` prints them.
    let key_ids = |p: &str| {
        let text = openssl(&[
            "x509",
            "-in",
            p,
            "-noout",
            "-ext",
            "subjectKeyIdentifier,authorityKeyIdentifier",
        ])
        .1;
        let after = |header: &str| {
            let mut lines = text.lines().skip_while(|l| !l.contains(header)).skip(1);
            let value = lines
                .next()
                .unwrap_or_else(|| panic!("{header} in {p}: {text}"));
            value.trim().trim_start_matches("keyid:").to_string()
        };
        (
            after("Subject Key Identifier"),
            after("Authority Key Identifier"),
        )
    };
    let (old_ski, old_aki) = key_ids(&old_root);
    let (new_ski, new_aki) = key_ids(&new_root);
    let (cross_ski, cross_aki) = key_ids(&cross);
    assert_eq!(old_ski, old_aki);
    assert_eq!(new_ski, new_aki);
    assert_ne!(old_ski, new_ski);
    assert_eq!((cross_ski, cross_aki), (new_ski.clone(), old_ski.clone()));
    let reversed = write(
        dir,
        "reversed.pem",
        format!(
            "{}{}",
            std::fs::read_to_string(&new_root).unwrap(),
            std::fs::read_to_string(&old_root).unwrap()
        ),
    );
    for trusted in [&bundle, &reversed] {
        for root in [&old_root, &new_root] {
            let (ok, out) = verify(&["-CAfile", trusted, root]);
            assert!(ok, "{root} against {trusted}: {out}");
        }
    }
    assert!(
        s.app.data().join("ca-r0.pem").exists() && s.app.data().join("ca-cross-r1.pem").exists()
    );

    // New certificates chain to the new CA at once: leaf + cross-certificate.
    let keep1 = registered_workload(&s, "keep1").await;
    let doomed1 = registered_workload(&s, "doomed1").await;
    assert_eq!(keep1.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(keep1
        .chain_pem
        .ends_with(body["cross_certificate"].as_str().unwrap()));
    let leaves: Vec<(String, &Enrolled)> = [
        ("keep0", &keep0),
        ("doomed0", &doomed0),
        ("keep1", &keep1),
        ("doomed1", &doomed1),
    ]
    .into_iter()
    .map(|(n, w)| (write(dir, &format!("{n}.pem"), leaf_pem(&w.chain_pem)), w))
    .collect();
    let (k0, d0, k1, d1) = (&leaves[0].0, &leaves[1].0, &leaves[2].0, &leaves[3].0);
    let text = openssl(&["x509", "-in", k1, "-noout", "-text"]).1;
    assert!(text.contains("/crl/r1"), "{text}");
    let text = openssl(&["x509", "-in", k0, "-noout", "-text"]).1;
    assert!(text.contains("/crl\n") || text.contains("/crl\r"), "{text}");

    for leaf in [k0, k1] {
        let (ok, out) = verify(&["-CAfile", &bundle, leaf]);
        assert!(ok, "bundle verifies {leaf}: {out}");
    }
    let (ok, out) = verify(&["-CAfile", &old_root, k0]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&["-CAfile", &old_root, "-untrusted", &cross, k1]);
    assert!(ok, "old root + cross-certificate verify a new leaf: {out}");
    let chain1 = write(dir, "chain1.pem", &keep1.chain_pem);
    for trusted in [&old_root, &new_root, &bundle] {
        let (ok, out) = verify(&["-CAfile", trusted, "-untrusted", &chain1, k1]);
        assert!(ok, "the handed-out chain works with {trusted}: {out}");
    }
    let (ok, _) = verify(&["-CAfile", &old_root, k1]);
    assert!(
        !ok,
        "without the cross-certificate the old root alone does not"
    );
    let (ok, out) = verify(&["-CAfile", &new_root, k1]);
    assert!(ok, "{out}");

    // mTLS with a pre-rotation certificate still works; renewal hands out a new-CA leaf.
    let csr = openssl_csr("ec", "");
    let resp = keep0
        .client(&s)
        .post(s.url("/v1/renew"))
        .json(&json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let renewed = write(dir, "renewed.pem", leaf_pem(&resp.text().await.unwrap()));
    let (ok, out) = verify(&["-CAfile", &new_root, &renewed]);
    assert!(ok, "renewal is signed by the new CA: {out}");
    // A post-rotation certificate authenticates too.
    let resp = keep1.mint_token(&s).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // Revoke one certificate of each generation (each through its own mTLS identity).
    revoke_self(&s, &doomed0).await;
    revoke_self(&s, &doomed1).await;

    // OCSP: each generation's CertIDs are answered, signed by that generation's key.
    for (issuer_pem, leaf, want) in [
        (&old_root, k0, "good"),
        (&old_root, d0, "revoked"),
        (&new_root, k1, "good"),
        (&new_root, d1, "revoked"),
    ] {
        let out = ocsp(&s, issuer_pem, &bundle, leaf);
        assert!(out.contains(&format!("{leaf}: {want}")), "{out}");
    }

    // CRLs: /crl for generation 0, /crl/r1 for generation 1; openssl checks both.
    let crl0 = crl_pem(&s, dir, "/crl", "crl0", &old_root).await;
    let crl1 = crl_pem(&s, dir, "/crl/r1", "crl1", &new_root).await;
    for (crl, ca, leaf, good) in [
        (&crl0, &old_root, k0, true),
        (&crl0, &old_root, d0, false),
        (&crl1, &new_root, k1, true),
        (&crl1, &new_root, d1, false),
        (&crl0, &bundle, k0, true),
        (&crl1, &bundle, d1, false),
    ] {
        let (ok, out) = verify(&["-crl_check", "-CRLfile", crl, "-CAfile", ca, leaf]);
        assert_eq!(ok, good, "{leaf} with {crl}: {out}");
        if !good {
            assert!(out.contains("certificate revoked"), "{out}");
        }
    }
    let resp = s.anonymous().get(s.url("/crl/r7")).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // Restart: the new CA is the one in use; old-root clients still reach the appliance
    // (its reissued server certificate chains to the old root through the cross-cert).
    let s = s.restart().await;
    assert_eq!(s.state().keys.current().ca_generation, 1);
    assert_eq!(s.state().keys.current().keys.ca.label(), "ca-r1");
    let resp = s
        .operator()
        .get(s.url("/v1/admin/integrations"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "operator cert from before the rotation");
    let bundle_client = client(bundle_text.as_bytes(), None);
    let resp = bundle_client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = keep0.mint_token(&s).await;
    assert_eq!(resp.status(), 201, "pre-rotation workload after restart");
    let later = registered_workload(&s, "later").await;
    let later_pem = write(dir, "later.pem", leaf_pem(&later.chain_pem));
    let (ok, out) = verify(&["-CAfile", &new_root, &later_pem]);
    assert!(ok, "{out}");
    let out = ocsp(&s, &old_root, &bundle, d0);
    assert!(out.contains(": revoked"), "{out}");
    let out = ocsp(&s, &new_root, &bundle, &later_pem);
    assert!(out.contains(": good"), "{out}");

    // `credmint init` on the rotated appliance is still a no-op (genesis is checked
    // against ca-r0.pem and the genesis keys, not against the rotated ones).
    let app = stop_keep(s).await;
    let report = app.init_in_process();
    assert!(report.unchanged(), "{:?}", report.steps);
}

async fn stop_keep(mut s: Served) -> TestAppliance {
    s.running
        .take()
        .unwrap()
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    s.app
}
