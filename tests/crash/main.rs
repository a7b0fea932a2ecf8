//! Crash campaign: a real `credmint serve` process is killed with SIGKILL at random
//! moments, a third of them during start-up (token login, ledger open, checkpoint), while
//! a client enrolls, renews, mints tokens and revokes. Afterwards every credential and
//! revocation the client was answered with is in the ledger, the exported ledger verifies
//! offline, no record is left without a signed checkpoint, and the token still holds every
//! key.
//!
//! `CREDMINT_CRASH_CYCLES` (default 30) sets the number of kills; the README's longer run
//! uses 100. `CREDMINT_CRASH_SEED` replays a run (the seed is printed).

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credmint_ledger::event::Event;
use credmint_ledger::Ledger;
use serde_json::{json, Value};

use common::{client, free_port, openssl_csr, require_tool, text, OpensslCsr, TestAppliance};

/// What the client was answered with (so must be in the ledger).
#[derive(Default)]
struct Received {
    certificates: BTreeSet<String>,
    tokens: BTreeSet<String>,
    revocations: BTreeSet<String>,
}

/// A small deterministic generator: the run is replayable from its printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

struct Campaign {
    app: TestAppliance,
    base: String,
    ca_pem: Vec<u8>,
    received: Arc<Mutex<Received>>,
    key: OpensslCsr,
    /// The workload's current certificate chain (its key is `key`).
    identity: Arc<Mutex<String>>,
}

impl Campaign {
    fn spawn(&self, cycle: usize) -> Child {
        let log = std::fs::File::create(self.log_path(cycle)).unwrap();
        Command::new(env!("CARGO_BIN_EXE_credmint"))
            .arg("--config")
            .arg(&self.app.config_path)
            .arg("serve")
            .env_remove("SOFTHSM2_CONF")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log_path(&self, cycle: usize) -> std::path::PathBuf {
        self.app.dir.path().join(format!("serve-{cycle}.log"))
    }

    fn operator(&self) -> reqwest::Client {
        let data = self.app.data();
        let mut pem = std::fs::read(data.join("operator-admin.pem")).unwrap();
        pem.extend(std::fs::read(data.join("operator-admin-key.pem")).unwrap());
        client(&self.ca_pem, Some(&pem))
    }

    fn workload(&self) -> reqwest::Client {
        let chain = self.identity.lock().unwrap().clone();
        let pem = format!("{chain}{}", self.key.key_pem);
        client(&self.ca_pem, Some(pem.as_bytes()))
    }

    /// Waits until `/healthz` answers 200 (or the process exits, which fails the test).
    async fn wait_ready(&self, child: &mut Child, cycle: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let anon = client(&self.ca_pem, None);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "serve exited with {status} in cycle {cycle}: {}",
                    std::fs::read_to_string(self.log_path(cycle)).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "serve not ready in cycle {cycle}"
            );
            if let Ok(resp) = anon.get(format!("{}/healthz", self.base)).send().await {
                if resp.status() == 200 {
                    return resp.json().await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The signed checkpoint's tree size.
    async fn checkpoint_size(&self) -> u64 {
        let url = format!("{}/v1/ledger/checkpoint", self.base);
        let note =
            String::from_utf8(common::fetch(&client(&self.ca_pem, None), &url).await).unwrap();
        note.lines().nth(1).unwrap().parse().unwrap()
    }

    async fn enrollment(&self) -> Option<String> {
        let resp = self
            .operator()
            .post(format!(
                "{}/v1/admin/integrations/crash-load/enrollments",
                self.base
            ))
            .json(&json!({"ttl_secs": 600}))
            .send()
            .await
            .ok()?;
        let body: Value = resp.json().await.ok()?;
        Some(body["token"].as_str()?.to_owned())
    }

    /// Enrolls (bearer token) or renews (mTLS); records the serial of a certificate it was
    /// answered with and makes that the current identity.
    async fn certificate(&self, enrollment: Option<&str>) {
        let csr = json!({ "csr": self.key.csr_pem });
        let request = match enrollment {
            Some(token) => client(&self.ca_pem, None)
                .post(format!("{}/v1/enroll", self.base))
                .bearer_auth(token),
            None => self.workload().post(format!("{}/v1/renew", self.base)),
        };
        let Ok(resp) = request.json(&csr).send().await else {
            return;
        };
        if resp.status() != 201 {
            return;
        }
        let serial = resp.headers()["x-credmint-serial"]
            .to_str()
            .unwrap()
            .to_owned();
        let Ok(chain) = resp.text().await else {
            return;
        };
        self.received.lock().unwrap().certificates.insert(serial);
        *self.identity.lock().unwrap() = chain;
    }

    async fn token(&self) {
        let Ok(resp) = self
            .workload()
            .post(format!("{}/v1/tokens", self.base))
            .json(&json!({"audience": "crash-test", "scopes": ["deploy:read"]}))
            .send()
            .await
        else {
            return;
        };
        if resp.status() != 201 {
            return;
        }
        if let Ok(body) = resp.json::<Value>().await {
            let jti = body["jti"].as_str().unwrap().to_owned();
            self.received.lock().unwrap().tokens.insert(jti);
        }
    }

    /// Revokes a certificate received earlier that is not the current identity.
    async fn revoke(&self, rng: &mut Rng) {
        let current = self.identity.lock().unwrap().clone();
        let candidates: Vec<String> = {
            let r = self.received.lock().unwrap();
            r.certificates
                .difference(&r.revocations)
                .filter(|s| !current_serial_is(&current, s))
                .cloned()
                .collect()
        };
        if candidates.is_empty() {
            return;
        }
        let serial = &candidates[rng.below(candidates.len() as u64) as usize];
        let Ok(resp) = self
            .operator()
            .post(format!(
                "{}/v1/admin/certificates/{serial}/revoke",
                self.base
            ))
            .json(&json!({"reason": "superseded"}))
            .send()
            .await
        else {
            return;
        };
        if resp.status() == 200 {
            self.received
                .lock()
                .unwrap()
                .revocations
                .insert(serial.clone());
        }
    }

    /// Client load until `stop` is set; returns the number of operations attempted.
    async fn load(&self, seed: u64, stop: Arc<std::sync::atomic::AtomicBool>) -> u64 {
        let mut rng = Rng(seed | 1);
        let mut ops = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match rng.below(8) {
                0 => {
                    if let Some(t) = self.enrollment().await {
                        self.certificate(Some(&t)).await;
                    }
                }
                1..=3 => self.certificate(None).await,
                4..=5 => self.token().await,
                _ => self.revoke(&mut rng).await,
            }
            ops += 1;
        }
        ops
    }
}

/// True when the leaf of `chain_pem` has serial `hex`.
fn current_serial_is(chain_pem: &str, hex: &str) -> bool {
    let leaf = chain_pem.split("-----END CERTIFICATE-----").next().unwrap();
    let (_, der) =
        x509_parser::pem::parse_x509_pem(format!("{leaf}-----END CERTIFICATE-----\n").as_bytes())
            .unwrap();
    let cert = der.parse_x509().unwrap();
    hex::encode(cert.raw_serial()) == hex
}

fn review_by() -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(200);
    format!("{date}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_random_moments_loses_nothing_acknowledged() {
    let cycles: usize = std::env::var("CREDMINT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("CREDMINT_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash campaign: {cycles} cycles, CREDMINT_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    require_tool("openssl");
    let port = free_port();
    let app = TestAppliance::with_listen("crash", &format!("127.0.0.1:{port}"));
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let ca_pem = std::fs::read(app.data().join("ca.pem")).unwrap();
    let ca_spki = ca_public_key(&app.data().join("ca.pem"));
    let campaign = Campaign {
        base: format!("https://localhost:{port}"),
        ca_pem,
        app,
        received: Arc::default(),
        key: openssl_csr("ec", ""),
        identity: Arc::default(),
    };

    // Set-up on a first, clean run: one integration and its first certificate.
    let mut child = campaign.spawn(0);
    let started = Instant::now();
    campaign.wait_ready(&mut child, 0).await;
    let startup = started.elapsed();
    let resp = campaign
        .operator()
        .post(format!("{}/v1/admin/integrations", campaign.base))
        .json(&json!({
            "name": "crash-load", "business_owner": "payments",
            "technical_owner": "alice@example.com", "purpose": "crash campaign",
            "environment": "test", "scopes": ["deploy:read"], "privilege_class": "routine",
            "max_ttl_secs": 900, "review_by": review_by(), "approval_ref": "CHG-1",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let token = campaign.enrollment().await.expect("enrollment token");
    campaign.certificate(Some(&token)).await;
    assert_eq!(campaign.received.lock().unwrap().certificates.len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();

    let campaign = Arc::new(campaign);
    let (mut startup_kills, mut serving_kills, mut tails, mut restored, mut ops) = (0, 0, 0, 0, 0);
    for cycle in 1..=cycles {
        let mut child = campaign.spawn(cycle);
        if cycle % 3 == 0 {
            // Anywhere in start-up: module load, token login (SoftHSM rewrites
            // token.object), ledger open, projections, the start-up checkpoint.
            let window = startup.as_millis() as u64 + 50;
            tokio::time::sleep(Duration::from_millis(rng.below(window))).await;
            startup_kills += 1;
        } else {
            let health = campaign.wait_ready(&mut child, cycle).await;
            // Whatever an earlier kill left unsigned was checkpointed before serving.
            let size = health["ledger_size"].as_u64().unwrap();
            let signed = campaign.checkpoint_size().await;
            if signed < size {
                tails += 1;
            }
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let workers: Vec<_> = (0..3)
                .map(|w| {
                    let (c, s) = (campaign.clone(), stop.clone());
                    let seed = rng.below(u64::MAX);
                    tokio::spawn(async move { c.load(seed ^ w, s).await })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(100 + rng.below(700))).await;
            serving_kills += 1;
            child.kill().unwrap();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for w in workers {
                ops += w.await.unwrap();
            }
        }
        let _ = child.kill();
        child.wait().unwrap();
        let log = std::fs::read_to_string(campaign.log_path(cycle)).unwrap_or_default();
        restored += log.matches("restored from the recovery copy").count();
    }

    // A final clean start: the token opens with every key, the tail is signed.
    let mut child = campaign.spawn(cycles + 1);
    let health = campaign.wait_ready(&mut child, cycles + 1).await;
    let size = health["ledger_size"].as_u64().unwrap();
    assert_eq!(campaign.checkpoint_size().await, size, "unsigned tail");
    let export = format!("{}/v1/admin/ledger/export", campaign.base);
    let bundle = common::fetch(&campaign.operator(), &export).await;
    let data = campaign.app.data();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
    restored += std::fs::read_to_string(campaign.log_path(cycles + 1))
        .unwrap_or_default()
        .matches("restored from the recovery copy")
        .count();

    let report = common::assert_verifies(
        &bundle,
        common::genesis_ledger_key(&data.join("ledger.redb")),
    );
    let ledger = Ledger::open(&data.join("ledger.redb")).unwrap();
    let (mut certs, mut tokens, mut revoked) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in ledger.records(0).unwrap() {
        match r.unwrap().decode().unwrap().event {
            Event::CertificateIssued(c) => drop(certs.insert(hex::encode(c.serial))),
            Event::TokenIssued(t) => drop(tokens.insert(t.jti)),
            Event::Revoked(r) => drop(revoked.insert(hex::encode(r.serial))),
            _ => {}
        }
    }
    let received = campaign.received.lock().unwrap();
    let missing = received.certificates.difference(&certs).count()
        + received.tokens.difference(&tokens).count()
        + received.revocations.difference(&revoked).count();
    println!(
        "crash campaign: {cycles} kills ({startup_kills} during start-up, {serving_kills} while serving), \
         {ops} client operations, received {} certificates, {} tokens, {} revocations; \
         missing {missing}; unsigned tails at start {tails}; token files restored {restored}; \
         ledger {} records, audit {:?}",
        received.certificates.len(),
        received.tokens.len(),
        received.revocations.len(),
        ledger.size(),
        report.outcome,
    );
    assert_eq!(
        missing, 0,
        "acknowledged credentials missing from the ledger"
    );
    assert_eq!(tails, 0, "a start served records no checkpoint covered");
    assert!(
        received.certificates.len() > cycles / 2 && !received.tokens.is_empty(),
        "the load did too little to mean anything"
    );
    // The token is intact: same CA key, and pkcs11-tool (not our code) sees every key.
    assert_eq!(ca_public_key(&data.join("ca.pem")), ca_spki);
    let objects = Command::new(require_tool("pkcs11-tool"))
        .args(["--module", common::SOFTHSM_MODULE, "--login", "--pin"])
        .arg(campaign.app.user_pin())
        .args(["--token-label", &campaign.app.token_label, "--list-objects"])
        .env("SOFTHSM2_CONF", data.join("softhsm2.conf"))
        .output()
        .unwrap();
    let listing = text(&objects.stdout);
    assert!(objects.status.success(), "{}", text(&objects.stderr));
    for label in ["ca", "token", "ledger"] {
        assert!(
            listing.contains(&format!("label:      {label}\n")),
            "key {label} missing: {listing}"
        );
    }
}

fn ca_public_key(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    let (_, der) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    der.parse_x509().unwrap().public_key().raw.to_vec()
}
