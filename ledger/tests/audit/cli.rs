//! The `credmint-audit` binary: exit codes, `--json`, key forms, queries.

use credmint_ledger::audit::bench::{generate_bundle, GenOptions};
use credmint_ledger::event::{Event, Revoked};
use credmint_ledger::note::verifier_key_string;
use credmint_ledger::Signer;

use crate::fixture::*;

#[test]
fn exit_codes_json_and_key_forms() {
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push("workload:billing", cert(&[0x20, 1], "billing", now, 3600));
    fx.push("workload:billing", token("cli-1", "billing", now, 600));
    let early_cp = fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    fx.push(
        "operator:bob",
        Event::Revoked(Revoked {
            serial: vec![0x20, 1],
            reason: 1,
        }),
    );
    let good = write(dir.path(), "good.bundle", &fx.bundle());
    let pk = ledger_signer().public_key();
    let vkey = verifier_key_string(ORIGIN, &pk);
    let key_file = write(dir.path(), "ledger.vkey", format!("{vkey}\n").as_bytes());

    // Verified, with each accepted key form.
    for key in [vkey.as_str(), &hex::encode(pk), &key_file] {
        let (code, out, err) = audit(&["verify", &good, "--ledger-key", key]);
        assert_eq!(code, 0, "{key}: {out}{err}");
        assert!(out.starts_with("VERIFIED"), "{out}");
    }
    let (code, out, _) = audit(&["verify", &good, "--ledger-key", &vkey, "--json"]);
    assert_eq!(code, 0);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["outcome"], "verified");
    assert_eq!(j["records"], 7);
    assert_eq!(j["event_counts"]["revoked"], 1);

    // A verifier key named for another log is refused as the wrong key.
    let other_name = verifier_key_string("other.example/log", &pk);
    assert_eq!(audit(&["verify", &good, "--ledger-key", &other_name]).0, 3);
    // Another key: tampered (or never this log).
    let stranger = hex::encode(credmint_ledger::DalekSigner::from_seed([0x77; 32]).public_key());
    assert_eq!(audit(&["verify", &good, "--ledger-key", &stranger]).0, 3);

    // Tampered bytes.
    let mut t = std::fs::read(&good).unwrap();
    let mid = t.len() / 2;
    t[mid] ^= 0x40;
    let bad = write(dir.path(), "bad.bundle", &t);
    let (code, out, _) = audit(&["verify", &bad, "--ledger-key", &vkey, "--json"]);
    assert_eq!(code, 3, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["outcome"], "tampered");
    assert!(
        j["failure"]["message"].as_str().unwrap().contains("record")
            || j["failure"]["check"].is_string()
    );

    // Unreadable: missing, not a bundle, truncated.
    assert_eq!(
        audit(&["verify", "/nonexistent/x.bundle", "--ledger-key", &vkey]).0,
        5
    );
    let junk = write(dir.path(), "junk", b"hello, world");
    assert_eq!(audit(&["verify", &junk, "--ledger-key", &vkey]).0, 5);
    let cut = write(
        dir.path(),
        "cut.bundle",
        &std::fs::read(&good).unwrap()[..100],
    );
    assert_eq!(audit(&["verify", &cut, "--ledger-key", &vkey]).0, 5);

    // Usage.
    assert_eq!(audit(&["verify", &good]).0, 2);
    assert_eq!(audit(&["verify", &good, "--ledger-key", "not-a-key"]).0, 2);
    assert_eq!(audit(&["frobnicate"]).0, 2);
    assert_eq!(audit(&["--help"]).0, 0);

    // Earlier checkpoint: consistent, then a rollback.
    let cp_file = write(dir.path(), "early.cp", early_cp.as_bytes());
    assert_eq!(
        audit(&[
            "verify",
            &good,
            "--ledger-key",
            &vkey,
            "--since-checkpoint",
            &cp_file
        ])
        .0,
        0
    );
    let saved = dir.path().join("latest.cp");
    let saved_s = saved.to_string_lossy().into_owned();
    assert_eq!(
        audit(&[
            "verify",
            &good,
            "--ledger-key",
            &vkey,
            "--save-checkpoint",
            &saved_s
        ])
        .0,
        0
    );
    fx.push("workload:billing", token("cli-2", "billing", now, 600));
    let newer_cp = fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let newer = write(dir.path(), "newer.cp", newer_cp.as_bytes());
    let (code, out, _) = audit(&[
        "verify",
        &good,
        "--ledger-key",
        &vkey,
        "--since-checkpoint",
        &newer,
    ]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("rollback"), "{out}");
    let newest = write(dir.path(), "newest.bundle", &fx.bundle());
    assert_eq!(
        audit(&[
            "verify",
            &newest,
            "--ledger-key",
            &vkey,
            "--since-checkpoint",
            &saved_s
        ])
        .0,
        0
    );
    let garbage_cp = write(dir.path(), "garbage.cp", b"not a note");
    assert_eq!(
        audit(&[
            "verify",
            &good,
            "--ledger-key",
            &vkey,
            "--since-checkpoint",
            &garbage_cp
        ])
        .0,
        2
    );

    // Semantic violation: authentic bytes, exit 1.
    fx.push(
        "operator:bob",
        Event::Revoked(Revoked {
            serial: vec![0x99],
            reason: 1,
        }),
    );
    let violating = write(dir.path(), "violating.bundle", &fx.bundle());
    let (code, out, _) = audit(&["verify", &violating, "--ledger-key", &vkey, "--json"]);
    assert_eq!(code, 1, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["violations"][0]["rule"], "revoke_unknown");
    assert_eq!(j["violations"][0]["index"], 8);
}

#[test]
fn query_lists_credentials_with_status_and_refuses_tampered_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push(
        "operator:alice",
        Event::IntegrationRegistered(credmint_ledger::event::IntegrationRegistered {
            spec: spec("reports"),
        }),
    );
    fx.push("workload:billing", cert(&[0x30, 1], "billing", now, 3600));
    fx.push("workload:billing", cert(&[0x30, 2], "billing", now, 3600));
    fx.push("workload:reports", token("rep-1", "reports", now, 600));
    fx.push(
        "operator:bob",
        Event::Revoked(Revoked {
            serial: vec![0x30, 1],
            reason: 1,
        }),
    );
    let b = fx.bundle();
    let good = write(dir.path(), "q.bundle", &b);
    let vkey = verifier_key_string(ORIGIN, &ledger_signer().public_key());

    let (code, out, err) = audit(&[
        "query",
        &good,
        "--ledger-key",
        &vkey,
        "--integration",
        "billing",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let creds = j["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 2);
    assert_eq!(creds[0]["status"], "revoked");
    assert_eq!(creds[1]["status"], "live");
    assert_eq!(creds[1]["approval_ref"], "CHG-billing");
    assert_eq!(
        creds[1]["signing_key"],
        hex::encode(ca_info(1).fingerprint())
    );

    // Status as of a later time: expired.
    let later = (now + 7200).to_string();
    let (_, out, _) = audit(&[
        "query",
        &good,
        "--ledger-key",
        &vkey,
        "--integration",
        "billing",
        "--at",
        &later,
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["credentials"][1]["status"], "expired");

    // By approval reference, by signing key, by operator, as a table.
    let (_, out, _) = audit(&[
        "query",
        &good,
        "--ledger-key",
        &vkey,
        "--approval-ref",
        "CHG-reports",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["credentials"].as_array().unwrap().len(), 1);
    let fp = hex::encode(ca_info(1).fingerprint());
    let (_, out, _) = audit(&[
        "query",
        &good,
        "--ledger-key",
        &vkey,
        "--key",
        &fp[..12],
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Both workload certificates and the two operator certificates.
    assert_eq!(j["credentials"].as_array().unwrap().len(), 4);
    let (code, out, _) = audit(&["query", &good, "--ledger-key", &vkey, "--operator", "alice"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("rep-1") && out.contains("3001") && out.contains("revoked"),
        "{out}"
    );
    let (_, out, _) = audit(&[
        "query",
        &good,
        "--ledger-key",
        &vkey,
        "--since",
        "2100-01-01T00:00:00Z",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(j["credentials"].as_array().unwrap().is_empty());

    // Refuses to answer from a tampered bundle.
    let mut t = b.clone();
    let mid = t.len() / 2;
    t[mid] ^= 1;
    let bad = write(dir.path(), "qbad.bundle", &t);
    let (code, _, err) = audit(&["query", &bad, "--ledger-key", &vkey]);
    assert_eq!(code, 3);
    assert!(err.contains("refusing"), "{err}");
    assert_eq!(
        audit(&[
            "query",
            &good,
            "--ledger-key",
            &vkey,
            "--since",
            "last week"
        ])
        .0,
        2
    );
}

#[test]
fn gen_bench_writes_a_bundle_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.bundle");
    let out_s = out.to_string_lossy().into_owned();
    let (code, stdout, err) = audit(&[
        "gen-bench",
        "--events",
        "500",
        "--out",
        &out_s,
        "--checkpoint-every",
        "100",
    ]);
    assert_eq!(code, 0, "{err}");
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ledger key: "))
        .unwrap()
        .to_owned();
    assert_eq!(audit(&["verify", &out_s, "--ledger-key", &key]).0, 0);
    // Same as the library's generator.
    let mut lib = Vec::new();
    generate_bundle(
        &GenOptions {
            events: 500,
            checkpoint_every: 100,
            ..GenOptions::default()
        },
        &mut lib,
    )
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), lib);
}

/// `credmint-audit query ... | head`: the reader closes the pipe early. The auditor must
/// stop quietly with the outcome's exit code, not panic with a backtrace.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let g = generate_bundle(
        &GenOptions {
            events: 3000,
            checkpoint_every: 1000,
            ..GenOptions::default()
        },
        &mut out,
    )
    .unwrap();
    let b = write(dir.path(), "big.bundle", &out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_credmint-audit"))
        .args(["query", &b, "--ledger-key", &g.verifier_key, "--json"])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped here, like `head -c 16`; the output is far above a pipe buffer.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn review_caps_are_options_of_the_auditor() {
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let mut long = spec("payroll");
    long.review_by = fx.now_s() + 1 + 500 * 86_400;
    fx.push(
        "operator:alice",
        Event::IntegrationRegistered(credmint_ledger::event::IntegrationRegistered { spec: long }),
    );
    let bundle = write(dir.path(), "long.bundle", &fx.bundle());
    let key = hex::encode(ledger_signer().public_key());
    let (code, out, _) = audit(&["verify", &bundle, "--ledger-key", &key]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("review_too_far"), "{out}");
    let (code, out, err) = audit(&[
        "verify",
        &bundle,
        "--ledger-key",
        &key,
        "--routine-review-max-days",
        "500",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `--witness` / `--min-witnesses`: the `--since-checkpoint` note must carry valid
/// cosignature/v1 lines by enough of the given witnesses, else exit 6 before anything else.
#[test]
fn witness_cosignatures_are_required_when_asked() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use credmint_ledger::cosignature::{cosign, WitnessKey};
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push("workload:billing", cert(&[0x21, 1], "billing", now, 3600));
    let cp = fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let good = write(dir.path(), "good.bundle", &fx.bundle());
    let vkey = verifier_key_string(ORIGIN, &ledger_signer().public_key());
    let body = &cp[..cp.rfind("\n\n").unwrap() + 1];
    let witnesses: Vec<(credmint_ledger::DalekSigner, WitnessKey)> = (1..=3u8)
        .map(|i| {
            let s = credmint_ledger::DalekSigner::from_seed([0x40 + i; 32]);
            let k = WitnessKey::new(&format!("witness.example/w{i}"), s.public_key()).unwrap();
            (s, k)
        })
        .collect();
    let line = |i: usize| cosign(body, &witnesses[i].1.name, &witnesses[i].0, now).unwrap();
    // w1 and w2 cosigned; w3 did not.
    let cosigned = write(
        dir.path(),
        "cosigned.cp",
        format!("{cp}{}{}", line(0), line(1)).as_bytes(),
    );
    let vk = |i: usize| witnesses[i].1.to_key_string();
    let key_file = write(dir.path(), "w1.vkey", format!("{}\n", vk(0)).as_bytes());
    let run = |cp_file: &str, extra: &[&str]| {
        let mut args = vec![
            "verify",
            &good,
            "--ledger-key",
            &vkey,
            "--since-checkpoint",
            cp_file,
        ];
        args.extend_from_slice(extra);
        audit(&args)
    };
    let (w1, w2, w3) = (vk(0), vk(1), vk(2));
    for extra in [
        vec!["--witness", w1.as_str()],
        vec!["--witness", key_file.as_str(), "--witness", w2.as_str()],
        vec![
            "--witness",
            &w1,
            "--witness",
            &w2,
            "--witness",
            &w3,
            "--min-witnesses",
            "2",
        ],
    ] {
        let (code, out, err) = run(&cosigned, &extra);
        assert_eq!(code, 0, "{extra:?}: {out}{err}");
    }
    // All three required (the default), two present: unwitnessed.
    let (code, _, err) = run(
        &cosigned,
        &["--witness", &w1, "--witness", &w2, "--witness", &w3],
    );
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("2 of the 3"), "{err}");
    // The plain checkpoint, no cosignature at all.
    let plain = write(dir.path(), "plain.cp", cp.as_bytes());
    assert_eq!(run(&plain, &["--witness", &w1]).0, 6);
    // A cosignature line altered by one byte of its signature.
    let l0 = line(0);
    let mut blob = B64
        .decode(l0.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    blob[40] ^= 1;
    let forged = format!(
        "{cp}\u{2014} {} {}\n",
        witnesses[0].1.name,
        B64.encode(blob)
    );
    let forged = write(dir.path(), "forged.cp", forged.as_bytes());
    let (code, _, err) = run(&forged, &["--witness", &w1]);
    assert_eq!(code, 6, "{err}");
    // Usage: a log key given as a witness key, N out of range, --witness alone.
    assert_eq!(run(&cosigned, &["--witness", &vkey]).0, 2);
    assert_eq!(
        run(&cosigned, &["--witness", &w1, "--min-witnesses", "2"]).0,
        2
    );
    assert_eq!(
        run(&cosigned, &["--witness", &w1, "--min-witnesses", "0"]).0,
        2
    );
    assert_eq!(
        audit(&["verify", &good, "--ledger-key", &vkey, "--witness", &w1]).0,
        2
    );
}

/// `verify-proof`: a receipt (c2sp.org/tlog-proof with the record as `extra`) proves its
/// record offline; any changed byte, the wrong key or missing cosignatures do not.
#[test]
fn verify_proof_checks_the_record_the_checkpoint_and_the_witnesses() {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use credmint_ledger::cosignature::{cosign, WitnessKey};
    use credmint_ledger::receipt::Receipt;
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let now = fx.now_s();
    let index = fx.push("workload:billing", cert(&[0x22, 1], "billing", now, 3600));
    fx.push("workload:billing", token("proof-1", "billing", now, 600));
    let cp = fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let size = fx.ledger.size();
    let witness = credmint_ledger::DalekSigner::from_seed([0x51; 32]);
    let wkey = WitnessKey::new("witness.example/p1", witness.public_key()).unwrap();
    let body = &cp[..cp.rfind("\n\n").unwrap() + 1];
    let receipt = |checkpoint: String| Receipt {
        index,
        record: Some(fx.ledger.record_bytes(index).unwrap().unwrap()),
        proof: fx.ledger.inclusion_proof(index, size).unwrap(),
        checkpoint,
    };
    let plain = receipt(cp.clone()).format();
    let cosigned = receipt(format!(
        "{cp}{}",
        cosign(body, &wkey.name, &witness, now).unwrap()
    ))
    .format();
    let vkey = verifier_key_string(ORIGIN, &ledger_signer().public_key());
    let w = wkey.to_key_string();
    let run = |name: &str, text: &str, extra: &[&str]| {
        let file = write(dir.path(), name, text.as_bytes());
        let mut args = vec!["verify-proof", &file, "--ledger-key", &vkey];
        args.extend_from_slice(extra);
        audit(&args)
    };
    let (code, out, err) = run("plain.tlog-proof", &plain, &["--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            j["index"].as_u64(),
            j["event"].as_str(),
            j["checkpoint_size"].as_u64()
        ),
        (Some(index), Some("certificate_issued"), Some(size))
    );
    let (code, out, _) = run("cosigned.tlog-proof", &cosigned, &["--witness", &w]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("PROVEN record") && out.contains("witness.example/p1"),
        "{out}"
    );
    // Without the cosignature the witness policy fails.
    assert_eq!(run("plain2.tlog-proof", &plain, &["--witness", &w]).0, 6);
    // One byte of the record changed (still decodable or not, the leaf changes).
    let extra = plain
        .lines()
        .nth(1)
        .unwrap()
        .strip_prefix("extra ")
        .unwrap();
    let mut rec = B64.decode(extra).unwrap();
    let last = rec.len() - 1;
    rec[last] ^= 1;
    let edited = plain.replacen(extra, &B64.encode(rec), 1);
    assert_eq!(run("edited.tlog-proof", &edited, &[]).0, 3);
    // Another ledger key, or another log's name for the key.
    let stranger = hex::encode(credmint_ledger::DalekSigner::from_seed([0x78; 32]).public_key());
    let file = write(dir.path(), "p.tlog-proof", plain.as_bytes());
    assert_eq!(
        audit(&["verify-proof", &file, "--ledger-key", &stranger]).0,
        3
    );
    // Not a receipt; a missing file; a bad key.
    assert_eq!(run("junk.tlog-proof", "hello\n", &[]).0, 5);
    assert_eq!(
        audit(&[
            "verify-proof",
            "/nonexistent.tlog-proof",
            "--ledger-key",
            &vkey
        ])
        .0,
        5
    );
    assert_eq!(audit(&["verify-proof", &file, "--ledger-key", "nope"]).0, 2);
}
