//! The body of every fuzz target, in one file shared by the libFuzzer binaries
//! (`fuzz/fuzz_targets/*.rs`) and the replay test of the main workspace
//! (`tests/fuzz_replay.rs`), which runs every committed seed (`fuzz/seeds/<target>/`) and
//! every kept crash input (`fuzz/regressions/<target>/`) through the same function on each
//! `cargo test`, without libFuzzer.
//!
//! Each function must never panic, whatever the input: a panic is a finding. The returned
//! `bool` says whether the input was accepted; libFuzzer ignores it, the replay test
//! requires it of the seeds (a seed that is refused explores nothing past the refusal).

// Each fuzz binary calls one of these functions.
#![allow(dead_code)]

use credmint_ledger::audit::{verify_bundle, AuditOptions, Outcome};
use credmint_ledger::event::Event;
use credmint_ledger::export::{BundleItem, BundleReader};
use credmint_ledger::note::Note;
use credmint_ledger::{checkpoint, Checkpoint, Record};

/// A target's body: never panics; true when the input was accepted.
pub type Entry = fn(&[u8]) -> bool;

/// Every target, by the name of its binary and of its corpus directories.
pub const TARGETS: &[(&str, Entry)] = &[
    ("csr", csr),
    ("ocsp_request", ocsp_request),
    ("record", record),
    ("signed_note", signed_note),
    ("bundle", bundle),
    ("workload_api_stream", workload_api_stream),
    ("acme_jws", acme_jws),
    ("receipt", receipt),
];

/// Receipts (c2sp.org/tlog-proof, `credmint-audit verify-proof`) reach auditors from
/// anyone. Accepted: it parses. Verification runs too, under the checkpoint's own origin
/// and a fixed key, so the note, record-decoding and inclusion paths see mutated input.
pub fn receipt(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(r) = credmint_ledger::receipt::Receipt::parse(text) else {
        return false;
    };
    let origin = r.checkpoint.lines().next().unwrap_or("");
    let _ = r.verify(origin, &[7u8; 32], &[], 0);
    let _ = r.format();
    true
}

/// ACME request bodies come from anyone (`/acme/*`, flattened JWS JSON). Accepted: it
/// parses and, when it carries its key (`jwk`), the key is valid, its canonical form reads
/// back to the same key, and the signature verifies.
pub fn acme_jws(data: &[u8]) -> bool {
    use credmint::acme::jws::{AccountKey, Jws};
    let Ok(jws) = Jws::parse(data) else {
        return false;
    };
    let _ = jws.is_post_as_get();
    let Some(jwk) = &jws.header.jwk else {
        return true;
    };
    let Ok(key) = AccountKey::from_jwk(jwk) else {
        return false;
    };
    let back =
        AccountKey::from_canonical(key.canonical.as_bytes()).expect("canonical JWK reads back");
    assert_eq!(
        back.canonical, key.canonical,
        "canonical form is not a fixed point"
    );
    jws.verify(&key).is_ok()
}

/// PKCS#10 requests come from unauthenticated workloads (enrollment), PEM or DER.
pub fn csr(data: &[u8]) -> bool {
    credmint::issue::parse_csr(data).is_ok()
}

/// OCSP requests come from anyone (public responder), DER.
pub fn ocsp_request(data: &[u8]) -> bool {
    credmint::status::ocsp::parse_request(data).is_ok()
}

/// Ledger records are read back from disk and from export bundles; decoding must reject
/// everything that is not canonical and re-encode exactly what it accepts.
pub fn record(data: &[u8]) -> bool {
    match Record::decode(data) {
        Ok(record) => {
            assert_eq!(record.encode(), data, "accepted a non-canonical encoding");
            true
        }
        Err(_) => false,
    }
}

/// Checkpoints (C2SP signed notes) are fetched from appliances and mirrors. The key is
/// not the signer's, so `open` exercises signature-line parsing and the unknown-key path.
pub fn signed_note(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let body = Note::parse(text)
        .ok()
        .and_then(|note| Checkpoint::parse_body(&note.text).ok());
    let origin = body
        .as_ref()
        .map_or("example.org/log", |b| b.origin.as_str());
    let _ = checkpoint::open(text, origin, &[7u8; 32]);
    body.is_some()
}

/// Export bundles are the auditor's input and may be hostile. The pinned key is the one
/// the bundle's own genesis names, so mutated bundles get past the key check and reach
/// the chain, tree, key-history and semantic checks.
pub fn bundle(data: &[u8]) -> bool {
    let opts = AuditOptions {
        ledger_key: genesis_ledger_key(data).unwrap_or([7u8; 32]),
        since: None,
        key_name: None,
        semantic: true,
        review_caps: Default::default(),
    };
    let report = verify_bundle(data, &opts, &mut |_, _| {}, &mut |_, _| {});
    report.outcome == Outcome::Verified
}

/// The ledger key of the bundle's first record, when that is a readable genesis.
fn genesis_ledger_key(data: &[u8]) -> Option<[u8; 32]> {
    let mut reader = BundleReader::open(data).ok()?;
    let Some(BundleItem::Record(bytes)) = reader.next_item().ok()? else {
        return None;
    };
    match Record::decode(bytes).ok()?.event {
        Event::Genesis(genesis) => genesis.ledger_key().ok(),
        _ => None,
    }
}

/// What any local process sends to the agent's Workload API socket (HTTP/2 client bytes)
/// goes through the `:authority` rewrite, which parses frames and HPACK. The first byte
/// picks how the rest arrives (1..=256 bytes per read). It must never change a length,
/// nor give a different result for another chunking. Accepted: something was rewritten
/// (the seeds are grpcio connections, whose `:authority` is the socket path).
pub fn workload_api_stream(data: &[u8]) -> bool {
    use credmint::agent::workload_api::rewrite_stream;
    let Some((&chunk, stream)) = data.split_first() else {
        return false;
    };
    let whole = rewrite_stream(stream, stream.len());
    assert_eq!(
        whole.len(),
        stream.len(),
        "the rewrite changed the stream's length"
    );
    let pieces = rewrite_stream(stream, usize::from(chunk) + 1);
    assert_eq!(whole, pieces, "another chunking gave another result");
    whole != stream
}
