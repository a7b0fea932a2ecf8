//! Witness cosignatures against a witness written here from the specs
//! (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature, c2sp.org/signed-note, RFC 6962
//! §2.1.2 / RFC 9162 §2.1.4 consistency proofs), not from credmint's code: it parses the
//! request body, checks the log's note signature and the consistency proof itself, keeps
//! the latest size and root, answers 409 with `text/x.tlog.size`, and cosigns with its own
//! Ed25519 key.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use credmint_ledger::cosignature::WitnessKey;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};

use crate::common::{self, genesis_key_of, TestAppliance};
use crate::support::registered_workload;

type Hash = [u8; 32];

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn node(l: &Hash, r: &Hash) -> Hash {
    sha256(&[&[1], l, r])
}

/// RFC 9162 §2.1.4.2, step by step.
fn consistent(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    proof: &[Hash],
) -> bool {
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_hash);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *first_hash && sr == *second_hash && sn == 0
}

/// A witness for one log.
pub struct SpecWitness {
    pub name: String,
    key: ed25519_dalek::SigningKey,
    log_name: String,
    log_key: ed25519_dalek::VerifyingKey,
    /// Latest cosigned (size, root).
    pub state: Mutex<(u64, Hash)>,
    pub conflicts: AtomicUsize,
    pub proofs_checked: AtomicUsize,
    pub cosigned: AtomicUsize,
    /// Answer every request with 100 KB of signature lines (a hostile witness).
    pub flood: std::sync::atomic::AtomicBool,
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

impl SpecWitness {
    pub fn new(name: &str, seed: u8, log_name: &str, log_key: [u8; 32]) -> Arc<SpecWitness> {
        Arc::new(SpecWitness {
            name: name.into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
            log_name: log_name.into(),
            log_key: ed25519_dalek::VerifyingKey::from_bytes(&log_key).unwrap(),
            state: Mutex::new((0, [0; 32])),
            conflicts: AtomicUsize::new(0),
            proofs_checked: AtomicUsize::new(0),
            cosigned: AtomicUsize::new(0),
            flood: Default::default(),
        })
    }

    /// `name+hex(SHA-256(name || "\n" || 0x04 || key)[:4])+base64(0x04 || key)`.
    pub fn vkey(&self) -> String {
        let pk = self.key.verifying_key().to_bytes();
        let id = sha256(&[self.name.as_bytes(), b"\n", &[0x04], &pk]);
        let mut typed = vec![0x04];
        typed.extend_from_slice(&pk);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(&id[..4]),
            B64.encode(typed)
        )
    }

    pub fn key(&self) -> WitnessKey {
        WitnessKey::parse(&self.vkey()).unwrap()
    }

    /// Serves `POST /add-checkpoint` on a free port.
    pub async fn start(self: &Arc<Self>) -> SocketAddr {
        let app = axum::Router::new()
            .route("/add-checkpoint", axum::routing::post(add_checkpoint))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Whether one of the note's signature lines is the log's, valid over `text`.
    fn log_signed(&self, text: &str, sigs: &str) -> bool {
        let id = sha256(&[
            self.log_name.as_bytes(),
            b"\n",
            &[0x01],
            self.log_key.as_bytes(),
        ]);
        sigs.lines().any(|line| {
            let Some((name, b64)) = line
                .strip_prefix("\u{2014} ")
                .and_then(|l| l.split_once(' '))
            else {
                return false;
            };
            let Ok(blob) = B64.decode(b64) else {
                return false;
            };
            if name != self.log_name || blob.len() != 68 || blob[..4] != id[..4] {
                return false;
            }
            let sig = ed25519_dalek::Signature::from_slice(&blob[4..]).unwrap();
            self.log_key.verify(text.as_bytes(), &sig).is_ok()
        })
    }

    fn handle(&self, body: &str) -> Response {
        if self.flood.load(Ordering::SeqCst) {
            let line = format!("\u{2014} {} {}\n", self.name, B64.encode([0u8; 76]));
            return answer(
                StatusCode::OK,
                "text/plain",
                line.repeat(100_000 / line.len() + 1),
            );
        }
        let bad = |m: &str| answer(StatusCode::BAD_REQUEST, "text/plain", m.to_string());
        let Some((head, note)) = body.split_once("\n\n") else {
            return bad("no empty line");
        };
        let mut head = head.lines();
        let Some(old) = head
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return bad("no old size line");
        };
        let proof: Option<Vec<Hash>> = head
            .map(|l| B64.decode(l).ok().and_then(|h| h.try_into().ok()))
            .collect();
        let Some(proof) = proof else {
            return bad("bad proof line");
        };
        if proof.len() > 63 {
            return bad("proof too long");
        }
        let Some(split) = note.rfind("\n\n") else {
            return bad("note has no signatures");
        };
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() < 3 {
            return bad("checkpoint too short");
        }
        if lines[0] != self.log_name {
            return answer(StatusCode::NOT_FOUND, "text/plain", "unknown log".into());
        }
        if !self.log_signed(text, sigs) {
            return answer(
                StatusCode::FORBIDDEN,
                "text/plain",
                "no valid log signature".into(),
            );
        }
        let (Ok(size), Ok(root)) = (lines[1].parse::<u64>(), B64.decode(lines[2])) else {
            return bad("bad size or root");
        };
        let Ok(root) = <Hash>::try_from(root) else {
            return bad("root is not 32 bytes");
        };
        if old > size {
            return bad("old size above the checkpoint's");
        }
        // Check and update under one lock (the spec's race).
        let mut state = self.state.lock().unwrap();
        let (have, have_root) = *state;
        let conflict = |n: u64| {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
            answer(StatusCode::CONFLICT, "text/x.tlog.size", format!("{n}\n"))
        };
        if old != have {
            return conflict(have);
        }
        if old == size {
            if old != 0 && root != have_root {
                return conflict(have);
            }
        } else if old == 0 {
            if !proof.is_empty() {
                return bad("a proof from size 0");
            }
        } else {
            self.proofs_checked.fetch_add(1, Ordering::SeqCst);
            if !consistent(old, size, &have_root, &root, &proof) {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "text/plain",
                    "inconsistent".into(),
                );
            }
        }
        *state = (size, root);
        drop(state);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let message = format!("cosignature/v1\ntime {now}\n{text}");
        let sig = self.key.sign(message.as_bytes());
        let pk = self.key.verifying_key().to_bytes();
        let id = sha256(&[self.name.as_bytes(), b"\n", &[0x04], &pk]);
        let mut blob = id[..4].to_vec();
        blob.extend_from_slice(&now.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        self.cosigned.fetch_add(1, Ordering::SeqCst);
        answer(
            StatusCode::OK,
            "text/plain",
            format!("\u{2014} {} {}\n", self.name, B64.encode(blob)),
        )
    }
}

async fn add_checkpoint(State(w): State<Arc<SpecWitness>>, body: Bytes) -> Response {
    match std::str::from_utf8(&body) {
        Ok(b) => w.handle(b),
        Err(_) => answer(StatusCode::BAD_REQUEST, "text/plain", "not UTF-8".into()),
    }
}

/// `GET /v1/ledger/checkpoint/cosigned`, as it answers now.
async fn cosigned_now(s: &common::Served) -> reqwest::Response {
    let url = s.url("/v1/ledger/checkpoint/cosigned");
    s.anonymous().get(url).send().await.unwrap()
}

/// The cosigned checkpoint once it covers `size`: (note, witness count).
async fn cosigned_at_least(s: &common::Served, size: u64) -> (String, String) {
    for _ in 0..200 {
        let r = cosigned_now(s).await;
        if r.status() == 200 {
            let count = r.headers()["x-credmint-witnesses"]
                .to_str()
                .unwrap()
                .to_string();
            let note = r.text().await.unwrap();
            if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) >= Some(size) {
                return (note, count);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no cosigned checkpoint of size {size} within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_resync_after_409_and_a_forked_view_gets_nothing() {
    let app = TestAppliance::new("witness");
    // The log's identity as a witness operator would configure it: origin and key.
    app.init_in_process();
    let (origin, log_key) = {
        let ledger = credmint_ledger::Ledger::open(&app.data().join("ledger.redb")).unwrap();
        (ledger.origin().to_string(), genesis_key_of(&ledger))
    };
    let w1 = SpecWitness::new("witness.test/w1", 0x31, &origin, log_key);
    let addr = w1.start().await;
    // A second witness that is down for the whole test: the first must not wait on it.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let w2 = SpecWitness::new("witness.test/w2", 0x32, &origin, log_key);
    std::fs::write(
        &app.config_path,
        std::fs::read_to_string(&app.config_path).unwrap()
            + &format!(
                "\n[[witness]]\nvkey = \"{}\"\nurl = \"http://{addr}\"\n\n[[witness]]\nvkey = \"{}\"\nurl = \"http://{down}/\"\n",
                w1.vkey(),
                w2.vkey()
            ),
    )
    .unwrap();
    let s = app.serve().await;
    let w = registered_workload(&s, "witnessed").await;
    for _ in 0..5 {
        assert_eq!(w.mint_token(&s).await.status(), 201);
    }
    let size = s.await_covered().await;
    let (note, count) = cosigned_at_least(&s, size).await;
    assert_eq!(count, "1", "{note}");
    let ledger_cp = credmint_ledger::checkpoint::open(&note, &origin, &log_key).unwrap();
    let found = credmint_ledger::cosignature::verify(&note, &[w1.key(), w2.key()]).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].witness, "witness.test/w1");
    assert_eq!(w1.state.lock().unwrap().0, ledger_cp.size);
    // Each witness's progress and failures are on /metrics.
    let metrics = s.scrape_metrics().await;
    let cosigned_records = crate::common::metric_value(
        &metrics,
        "credmint_witness_cosigned_records{witness=\"witness.test/w1\"}",
    );
    assert!(cosigned_records >= ledger_cp.size as f64, "{metrics}");
    let down_failures = crate::common::metric_value(
        &metrics,
        "credmint_witness_failures_total{witness=\"witness.test/w2\",kind=\"unreachable\"}",
    );
    assert!(down_failures >= 1.0, "{metrics}");
    // The plain checkpoint route is unchanged: no cosignature lines.
    let plain = s
        .anonymous()
        .get(s.url("/v1/ledger/checkpoint"))
        .send()
        .await
        .unwrap();
    assert!(!plain.text().await.unwrap().contains("witness.test"));

    // Receipts: the certificate's issuance against the cosigned checkpoint, checked
    // offline with the ledger key and w1's key; a fresh token's against the latest.
    let serial = crate::common::leaf_serial(&w.chain_pem);
    let get = |path: String| {
        let (http, url) = (s.anonymous(), s.url(&path));
        async move { http.get(url).send().await.unwrap() }
    };
    let r = get(format!("/v1/status/{serial}/receipt")).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let receipt = credmint_ledger::receipt::Receipt::parse(&text).unwrap();
    let proven = receipt.verify(&origin, &log_key, &[w1.key()], 1).unwrap();
    assert_eq!(proven.record.event.kind(), "certificate_issued");
    assert_eq!(proven.cosignatures.len(), 1);
    let minted: serde_json::Value = w.mint_token(&s).await.json().await.unwrap();
    let jti = minted["jti"].as_str().unwrap();
    let r = get(format!("/v1/status/token/{jti}/receipt?event=issued")).await;
    assert_eq!(r.status(), 200);
    let receipt = credmint_ledger::receipt::Receipt::parse(&r.text().await.unwrap()).unwrap();
    let proven = receipt.verify(&origin, &log_key, &[], 0).unwrap();
    assert_eq!(proven.record.event.kind(), "token_issued");
    assert_eq!(
        get(format!("/v1/status/{serial}/receipt?event=revoked"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(format!("/v1/status/{serial}/receipt?x=1"))
            .await
            .status(),
        400
    );
    assert_eq!(get("/v1/status/00ff/receipt".into()).await.status(), 404);

    // A restarted appliance knows nothing of w1's state: its "old 0" gets 409 with the
    // size w1 holds, and it resends with a consistency proof from there.
    // The cosigned checkpoint survives a restart (data_dir/checkpoint.cosigned): with w1
    // refusing meanwhile, the restarted appliance still serves the one it had.
    let size = s.await_covered().await;
    let (kept, _) = cosigned_at_least(&s, size).await;
    w1.flood.store(true, Ordering::SeqCst);
    let s = s.restart().await;
    let r = cosigned_now(&s).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), kept);
    w1.flood.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(w.mint_token(&s).await.status(), 201);
    }
    let size = s.await_covered().await;
    let (note, _) = cosigned_at_least(&s, size).await;
    assert!(w1.conflicts.load(Ordering::SeqCst) >= 1);
    assert!(w1.proofs_checked.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        credmint_ledger::cosignature::verify(&note, &[w1.key()])
            .unwrap()
            .len(),
        1
    );
    let before = credmint_ledger::checkpoint::open(&note, &origin, &log_key)
        .unwrap()
        .size;

    // A witness that answers with an endless body is cut off (64 KiB), counted, retried.
    w1.flood.store(true, Ordering::SeqCst);
    assert_eq!(w.mint_token(&s).await.status(), 201);
    s.await_covered().await;
    let series = "credmint_witness_failures_total{witness=\"witness.test/w1\",kind=\"bad_answer\"}";
    let mut seen = 0.0;
    for _ in 0..100 {
        seen = crate::common::metric_value(&s.scrape_metrics().await, series);
        if seen >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen >= 1.0, "no bad_answer failure counted");
    let logs = crate::common::captured_logs();
    assert!(
        logs.contains("answer longer than 65536 bytes"),
        "the flood was not cut off"
    );
    w1.flood.store(false, Ordering::SeqCst);

    // w1 now claims a larger tree than the ledger has (it saw a fork): the appliance gets
    // no cosignature and keeps serving the last one it had.
    *w1.state.lock().unwrap() = (size + 1000, [7; 32]);
    let cosigned_before = w1.cosigned.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(w.mint_token(&s).await.status(), 201);
    }
    let newer = s.await_covered().await;
    assert!(newer > before);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = cosigned_now(&s).await;
    let still = r.text().await.unwrap();
    assert_eq!(
        still, note,
        "a forked witness view must not advance the cosigned checkpoint"
    );
    assert_eq!(w1.cosigned.load(Ordering::SeqCst), cosigned_before);
    let metrics = s.scrape_metrics().await;
    let ahead = crate::common::metric_value(
        &metrics,
        "credmint_witness_failures_total{witness=\"witness.test/w1\",kind=\"ahead\"}",
    );
    assert!(ahead >= 1.0, "{metrics}");
    s.stop().await;
}

#[test]
fn the_consistency_check_of_this_witness_rejects_a_wrong_proof() {
    // Leaves 0..8 of a tiny tree, built here; proofs from the ledger crate for two sizes.
    let leaves: Vec<Hash> = (0u8..8).map(|i| sha256(&[&[0], &[i]])).collect();
    let root = |n: usize| credmint_ledger::merkle::root_from_leaf_hashes(&leaves[..n]);
    let mut lookup = credmint_ledger::merkle::slice_lookup(&leaves);
    for (m, n) in [(1u64, 8u64), (3, 7), (4, 8), (6, 8), (7, 8)] {
        let proof = credmint_ledger::merkle::consistency_proof(m, n, &mut lookup).unwrap();
        assert!(
            consistent(m, n, &root(m as usize), &root(n as usize), &proof),
            "{m}->{n}"
        );
        let mut wrong = proof.clone();
        wrong[0][0] ^= 1;
        assert!(
            !consistent(m, n, &root(m as usize), &root(n as usize), &wrong),
            "{m}->{n} tampered"
        );
    }
}
