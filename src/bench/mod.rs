//! `credmint bench`: release-build throughput figures for the closing notes.
//! (`issue`: end-to-end HTTPS issuance against a running appliance.)
//!
//! HSM: signatures/s through credmint's session pool (what issuance pays) next to a bare
//! cryptoki C_Sign loop on the same key with one session per thread (the ceiling).
//! Ledger: durable appends/s, one event per transaction and batched.

pub mod acme;
pub mod issue;
pub mod load;
pub mod seed;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use credmint_ledger::event::{Event, Genesis, KeyAlgorithm, KeyInfo, KeyRole};
use credmint_ledger::{Ledger, NewEntry};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Algorithm;
use crate::hsm::{keys::require_key, HsmError, HsmKey};

#[derive(Debug, Serialize)]
pub struct Figure {
    pub what: String,
    pub threads: usize,
    pub ops: u64,
    pub seconds: f64,
    pub per_second: f64,
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<48} threads={} {:>10.0}/s ({} ops in {:.2}s)",
            self.what, self.threads, self.per_second, self.ops, self.seconds
        )
    }
}

fn run_threads(
    threads: usize,
    duration: Duration,
    work: impl Fn(usize) -> Result<Box<dyn FnMut() -> Result<(), HsmError> + Send>, HsmError> + Sync,
) -> Result<(u64, f64), HsmError> {
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for t in 0..threads {
            let mut step = work(t)?;
            let (stop, count) = (&stop, &count);
            handles.push(scope.spawn(move || -> Result<(), HsmError> {
                while !stop.load(Ordering::Relaxed) {
                    step()?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }));
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join()
                .map_err(|_| HsmError::Malformed("bench thread panicked".into()))??;
        }
        Ok::<(), HsmError>(())
    })?;
    Ok((count.load(Ordering::Relaxed), start.elapsed().as_secs_f64()))
}

fn figure(what: String, threads: usize, (ops, seconds): (u64, f64)) -> Figure {
    Figure {
        what,
        threads,
        ops,
        seconds,
        per_second: ops as f64 / seconds,
    }
}

/// Pool vs bare C_Sign for `key`, for each thread count.
pub fn hsm(key: &HsmKey, threads: &[usize], duration: Duration) -> Result<Vec<Figure>, HsmError> {
    let alg = key.algorithm().name();
    let msg = vec![0x5au8; 256];
    let mut out = Vec::new();
    for &n in threads {
        let pooled = run_threads(n, duration, |_| {
            let key = key.clone();
            let msg = msg.clone();
            Ok(Box::new(move || key.sign_raw(&msg).map(|_| ())))
        })?;
        out.push(figure(format!("{alg} sign via credmint pool"), n, pooled));
        let bare = run_threads(n, duration, |_| bare_signer(key, &msg))?;
        out.push(figure(format!("{alg} bare cryptoki C_Sign loop"), n, bare));
    }
    Ok(out)
}

/// One dedicated session per thread, no pool, no handle cache checks: the module's ceiling.
/// ECDSA signs a precomputed SHA-256 digest, as a bare loop would.
fn bare_signer(
    key: &HsmKey,
    msg: &[u8],
) -> Result<Box<dyn FnMut() -> Result<(), HsmError> + Send>, HsmError> {
    let hsm = key.hsm().clone();
    let handle = require_key(&hsm, key.label(), ObjectClass::PRIVATE_KEY)?;
    let session = hsm
        .context()
        .open_ro_session(hsm.slot())
        .map_err(HsmError::from_ck)?;
    let alg = key.algorithm();
    let input = match alg {
        Algorithm::Ed25519 => msg.to_vec(),
        Algorithm::EcdsaP256 => Sha256::digest(msg).to_vec(),
    };
    // `Mechanism` is not Send; it is a plain value, so build it per call.
    Ok(Box::new(move || {
        let mechanism = match alg {
            Algorithm::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            Algorithm::EcdsaP256 => Mechanism::Ecdsa,
        };
        session
            .sign(&mechanism, handle, &input)
            .map(|_| ())
            .map_err(HsmError::from_ck)
    }))
}

/// A synthetic genesis for a throwaway benchmark ledger.
fn bench_genesis() -> NewEntry {
    NewEntry {
        timestamp_ms: 1,
        actor: "system:bench".into(),
        event: Event::Genesis(Genesis {
            origin: "bench.invalid/credmint-ledger".into(),
            keys: vec![KeyInfo {
                role: KeyRole::Ledger,
                algorithm: KeyAlgorithm::Ed25519,
                label: "bench".into(),
                spki_der: [
                    &[
                        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                    ][..],
                    &[7u8; 32][..],
                ]
                .concat(),
            }],
            config_digest: [0; 32],
            ca_certificate_der: vec![0x30, 0x00],
        }),
    }
}

fn bench_event(i: u64) -> NewEntry {
    let mut serial = i.to_be_bytes().to_vec();
    serial.extend_from_slice(&[0x11; 8]);
    NewEntry {
        timestamp_ms: 1_700_000_000_000 + i,
        actor: "workload:bench".into(),
        event: Event::CertificateIssued(credmint_ledger::event::CertificateIssued {
            serial,
            integration: "bench-integration".into(),
            subject: "spiffe://credmint.local/prod/bench-integration".into(),
            not_before: 1_700_000_000,
            not_after: 1_700_000_900,
            key_fingerprint: Sha256::digest(i.to_be_bytes()).into(),
        }),
    }
}

/// Durable appends into a fresh ledger file in `dir`: `events` in batches of `batch`.
pub fn ledger(
    dir: &std::path::Path,
    events: u64,
    batch: u64,
) -> Result<Figure, credmint_ledger::StoreError> {
    let path = dir.join(format!("bench-ledger-{}-{batch}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let ledger = Ledger::create(&path, bench_genesis())?;
    let start = Instant::now();
    let mut i = 0;
    while i < events {
        let n = batch.min(events - i);
        ledger.append_batch((i..i + n).map(bench_event).collect())?;
        i += n;
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(ledger);
    let _ = std::fs::remove_file(&path);
    Ok(Figure {
        what: format!("ledger durable append, {batch} event(s)/commit"),
        threads: 1,
        ops: events,
        seconds,
        per_second: events as f64 / seconds,
    })
}
