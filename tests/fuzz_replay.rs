//! Replays the fuzz corpus without libFuzzer: every committed seed (`fuzz/seeds/<target>/`)
//! and every kept crash input (`fuzz/regressions/<target>/`) goes through the same entry
//! function the fuzz target calls (`fuzz/entries.rs`). Seeds must also be *accepted*, so a
//! parser change that starts refusing real inputs shows up here, not as a silently
//! shallower fuzz run. `deploy/fuzz.sh` runs the fuzzers themselves.
//!
//! The seeds are real inputs: CSRs from `openssl req`, OCSP requests from `openssl ocsp
//! -reqout`, and records, checkpoints and an export bundle of a live appliance (SoftHSM,
//! HTTPS). `regenerate_fuzz_seeds` writes them again:
//! `cargo test --test fuzz_replay -- --ignored regenerate_fuzz_seeds`.

#[path = "common/mod.rs"]
mod common;
#[path = "../fuzz/entries.rs"]
mod entries;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use common::{date_in_days, openssl, openssl_csr, text, Served, TestAppliance};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `input` through `entry`; `Err` with the panic message if it panicked.
fn run(entry: entries::Entry, input: &[u8]) -> Result<bool, String> {
    std::panic::catch_unwind(|| entry(input)).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

#[test]
fn every_seed_and_regression_input_replays_without_a_panic() {
    let mut failures = Vec::new();
    for (target, entry) in entries::TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target));
        assert!(
            seeds.len() >= 2,
            "fuzz/seeds/{target}/ has {} inputs; regenerate the seeds",
            seeds.len()
        );
        for path in &seeds {
            match run(*entry, &std::fs::read(path).unwrap()) {
                Ok(true) => {}
                Ok(false) => failures.push(format!("{}: seed refused", path.display())),
                Err(panic) => failures.push(format!("{}: panicked: {panic}", path.display())),
            }
        }
        for path in inputs(&fuzz_dir().join("regressions").join(target)) {
            if let Err(panic) = run(*entry, &std::fs::read(&path).unwrap()) {
                failures.push(format!("{}: panicked: {panic}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn regression_inputs_belong_to_a_target() {
    let Ok(dirs) = std::fs::read_dir(fuzz_dir().join("regressions")) else {
        return;
    };
    for dir in dirs.map(|d| d.unwrap().path()).filter(|p| p.is_dir()) {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            entries::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name}/ names no fuzz target, so nothing would replay it"
        );
    }
}

/// Writes `bytes` as `fuzz/seeds/<target>/<name>`.
fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn ok(args: &[&str]) -> String {
    let (success, out) = openssl(args);
    assert!(success, "openssl {args:?}: {out}");
    out
}

async fn post(client: &reqwest::Client, s: &Served, path: &str, body: serde_json::Value) -> String {
    let resp = client.post(s.url(path)).json(&body).send().await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rewrites fuzz/seeds/: run by hand when a format changes"]
async fn regenerate_fuzz_seeds() {
    let _ = std::fs::remove_dir_all(fuzz_dir().join("seeds"));
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();

    // CSRs as workloads send them: P-256, Ed25519 (DER), RSA, and extra name types.
    let p256 = openssl_csr(
        "ec",
        "DNS:web.internal.example,URI:spiffe://td.example/prod/web",
    );
    write_seed("csr", "p256.pem", p256.csr_pem.as_bytes());
    let ed = openssl_csr("ed25519", "DNS:web.internal.example");
    std::fs::write(file("ed.pem"), &ed.csr_pem).unwrap();
    ok(&[
        "req",
        "-in",
        &file("ed.pem"),
        "-outform",
        "DER",
        "-out",
        &file("ed.der"),
    ]);
    write_seed(
        "csr",
        "ed25519.der",
        &std::fs::read(file("ed.der")).unwrap(),
    );
    let rsa = openssl_csr("rsa:2048", "");
    write_seed("csr", "rsa2048.pem", rsa.csr_pem.as_bytes());
    let other = openssl_csr("ec", "DNS:a.example,IP:10.0.0.1,email:ops@example.com");
    write_seed("csr", "p256-ip-email.pem", other.csr_pem.as_bytes());

    // A live appliance: register, enroll, renew, token, revoke, recertify.
    let s = TestAppliance::new("fuzz-seeds").serve().await;
    let registration = json!({
        "name": "web", "business_owner": "payments", "technical_owner": "alice@example.com",
        "purpose": "serves the payments site", "environment": "prod",
        "scopes": ["deploy:read"], "privilege_class": "routine", "max_ttl_secs": 900,
        "review_by": date_in_days(300), "approval_ref": "CHG-1",
        "dns_names": ["web.internal.example"], "audiences": ["deploy-api"],
    });
    post(&s.operator(), &s, "/v1/admin/integrations", registration).await;
    let enrollment: serde_json::Value = serde_json::from_str(
        &post(
            &s.operator(),
            &s,
            "/v1/admin/integrations/web/enrollments",
            json!({"ttl_secs": 600}),
        )
        .await,
    )
    .unwrap();
    let workload_csr = openssl_csr("ec", "DNS:web.internal.example");
    let resp = s
        .anonymous()
        .post(s.url("/v1/enroll"))
        .bearer_auth(enrollment["token"].as_str().unwrap())
        .json(&json!({ "csr": workload_csr.csr_pem }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let chain = resp.text().await.unwrap();
    let workload = s.with_identity(&chain, &workload_csr.key_pem);
    let renewed = post(&workload, &s, "/v1/renew", json!({ "csr": ed.csr_pem })).await;
    post(
        &workload,
        &s,
        "/v1/tokens",
        json!({ "audience": "deploy-api", "scopes": ["deploy:read"] }),
    )
    .await;

    // OCSP requests as openssl makes them, for the certificates just issued.
    std::fs::write(file("ca.pem"), &s.ca_pem).unwrap();
    let leaf = |chain: &str| {
        chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap()
            .to_owned()
    };
    std::fs::write(file("leaf.pem"), leaf(&chain)).unwrap();
    std::fs::write(file("renewed.pem"), leaf(&renewed)).unwrap();
    let (ca, leaf1, leaf2) = (file("ca.pem"), file("leaf.pem"), file("renewed.pem"));
    let requests: [(&str, Vec<&str>); 4] = [
        ("nonce-sha1.der", vec!["-cert", &leaf1]),
        ("no-nonce.der", vec!["-cert", &leaf1, "-no_nonce"]),
        (
            "sha256-two-certs.der",
            vec!["-sha256", "-cert", &leaf1, "-cert", &leaf2],
        ),
        (
            "serial.der",
            vec!["-serial", "0x7f00112233445566778899aabbccddee"],
        ),
    ];
    for (name, args) in requests {
        let out = file(name);
        let mut all = vec!["ocsp", "-issuer", &ca, "-reqout", &out];
        all.extend(args);
        ok(&all);
        write_seed("ocsp_request", name, &std::fs::read(&out).unwrap());
    }

    post(&workload, &s, "/v1/revoke", json!({"reason": "superseded"})).await;
    post(
        &s.operator(),
        &s,
        "/v1/admin/integrations/web/recertify",
        json!({"review_by": date_in_days(300), "reference": "REV-1"}),
    )
    .await;
    s.state().sequencer.flush().await.unwrap();

    // One record of each kind the session wrote (the first of its kind).
    let mut kinds = BTreeMap::new();
    for record in s.records() {
        kinds.entry(record.event.kind()).or_insert(record);
    }
    for (kind, record) in &kinds {
        write_seed("record", &format!("{kind}.bin"), &record.encode());
    }
    assert!(kinds.len() >= 8, "{:?}", kinds.keys());

    // The checkpoint as served, and the export bundle (its checkpoints are signed notes too).
    let bundle = s.export_bundle().await;
    let checkpoint = common::fetch(&s.anonymous(), &s.url("/v1/ledger/checkpoint")).await;
    write_seed("signed_note", "served.note", &checkpoint);
    // Receipts of the workload's certificate: its issuance, and (the default once
    // revoked) its revocation.
    let serial = common::leaf_serial(&chain);
    for (name, query) in [
        ("issued.tlog-proof", "?event=issued"),
        ("revoked.tlog-proof", ""),
    ] {
        let url = s.url(&format!("/v1/status/{serial}/receipt{query}"));
        write_seed("receipt", name, &common::fetch(&s.anonymous(), &url).await);
    }
    write_seed("bundle", "appliance.bundle", &bundle);
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger/testdata/small.bundle");
    write_seed("bundle", "small.bundle", &std::fs::read(small).unwrap());
    let mut reader = credmint_ledger::export::BundleReader::open(&bundle[..]).unwrap();
    let mut notes = 0;
    while let Some(item) = reader.next_item().unwrap() {
        if let credmint_ledger::export::BundleItem::Checkpoint(note) = item {
            notes += 1;
            write_seed(
                "signed_note",
                &format!("bundle-{notes}.note"),
                note.as_bytes(),
            );
        }
    }
    s.stop().await;

    // What grpcio (py-spiffe) sends on a Workload API socket, read in 16-byte and in
    // 1-byte pieces (the first byte of a seed picks the chunking).
    let python = Path::new(
        &std::env::var("CREDMINT_PKILINT_VENV")
            .unwrap_or_else(|_| "/opt/credmint/pkilint-venv".into()),
    )
    .join("bin/python");
    for (call, chunk) in [("x509", 15u8), ("jwt", 0)] {
        let out = file(&format!("grpcio-{call}.bin"));
        let status = std::process::Command::new(&python)
            .arg(fuzz_dir().join("capture_grpcio.py"))
            .args([&out, call])
            .env("PYTHONWARNINGS", "ignore")
            .status()
            .unwrap();
        assert!(status.success(), "capture_grpcio.py {call}");
        let mut seed = vec![chunk];
        seed.extend(std::fs::read(&out).unwrap());
        write_seed(
            "workload_api_stream",
            &format!("grpcio-fetch-{call}.bin"),
            &seed,
        );
    }
    // ACME requests as certbot's JOSE stack (Debian's python3-acme, josepy) signs them.
    let status = std::process::Command::new("/usr/bin/python3")
        .arg(fuzz_dir().join("capture_josepy.py"))
        .status()
        .unwrap();
    assert!(status.success(), "capture_josepy.py");
    eprintln!("{}", text(b"seeds written under fuzz/seeds/"));
    every_seed_and_regression_input_replays_without_a_panic();
}
