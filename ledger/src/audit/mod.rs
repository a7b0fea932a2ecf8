//! The offline auditor: verifies an export bundle (bytes, chain, tree,
//! checkpoint signatures, key history, then meaning) and answers
//! blast-radius queries from it. A library so `credmint-audit`, the tests and
//! the appliance run the same code; the binary only parses arguments and
//! prints.
//!
//! Outcomes map to exit codes (FORMAT.md §14): verified 0, semantic
//! violations 1, usage 2, tampered 3, inconsistent with an earlier checkpoint
//! 4, unreadable 5.

pub mod bench;
pub mod cli;
pub mod query;
mod report;
pub mod time;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

pub use report::render_human;

use crate::checkpoint::{self, Checkpoint};
use crate::error::NoteError;
use crate::event::{Event, KeyAlgorithm, KeyInfo, KeyRole};
use crate::export::{BundleItem, BundleReader};
use crate::governance::ReviewCaps;
use crate::keys::KeyRing;
use crate::merkle::EMPTY_ROOT;
use crate::note::Note;
use crate::record::Record;
use crate::verify::semantic::{SemanticChecker, SemanticStats, SemanticViolation};
use crate::verify::StreamVerifier;

/// How a verification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Verified,
    /// The bytes are authentic but break semantic rules.
    Violations,
    /// Bytes, chain, tree, key history or a signature are wrong.
    Tampered,
    /// Authentic, but not an extension of the earlier checkpoint (fork or rollback).
    Inconsistent,
    /// Not readable as a bundle (I/O, not a bundle, truncated).
    Unreadable,
}

/// Exit code for command-line usage errors.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the earlier checkpoint lacks the cosignatures `--witness` requires.
pub const EXIT_UNWITNESSED: u8 = 6;

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Verified => 0,
            Outcome::Violations => 1,
            Outcome::Tampered => 3,
            Outcome::Inconsistent => 4,
            Outcome::Unreadable => 5,
        }
    }
}

/// A signed checkpoint seen earlier, to prove the bundle extends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierCheckpoint {
    /// The note as given.
    pub text: String,
    /// Its body (signature not yet verified: that needs the key in force at its size).
    pub body: Checkpoint,
}

impl EarlierCheckpoint {
    /// Parses a signed checkpoint note; the signature is checked during verification.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let note = Note::parse(text)?;
        let body = Checkpoint::parse_body(&note.text)?;
        Ok(EarlierCheckpoint {
            text: text.to_owned(),
            body,
        })
    }
}

/// What to verify against.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The genesis ledger key, obtained out of band.
    pub ledger_key: [u8; 32],
    /// An earlier checkpoint the bundle must extend.
    pub since: Option<EarlierCheckpoint>,
    /// The key's name when it was given as a verifier key; must equal the origin.
    pub key_name: Option<String>,
    /// Run the semantic rules (FORMAT.md §13).
    pub semantic: bool,
    /// The review-by caps the appliance was configured with (FORMAT.md §13.3;
    /// `ReviewCaps::default()` is the appliance's default, 365 / 90 days).
    pub review_caps: ReviewCaps,
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Short stable name of the failed check.
    pub check: String,
    /// Record index or checkpoint size, expected and found.
    pub message: String,
}

/// A key rotation followed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyEvent {
    /// Record index of the rotation.
    pub index: u64,
    /// Role rotated.
    pub role: &'static str,
    /// SHA-256 of the old key's SPKI.
    pub old_fingerprint: String,
    /// SHA-256 of the new key's SPKI.
    pub new_fingerprint: String,
    /// Record time.
    pub time: String,
}

/// A key in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyView {
    /// Role.
    pub role: &'static str,
    /// Algorithm.
    pub algorithm: &'static str,
    /// Label.
    pub label: String,
    /// SHA-256 of its SPKI, hex.
    pub fingerprint: String,
}

/// Result of the `--since-checkpoint` check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinceResult {
    /// Size of the earlier checkpoint.
    pub size: u64,
    /// Its root, hex.
    pub root: String,
    /// Whether the bundle extends it.
    pub consistent: bool,
    /// What was found.
    pub detail: String,
}

/// Everything a verification found; serialised for `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditReport {
    /// Outcome.
    pub outcome: Outcome,
    /// Process exit code for the outcome.
    pub exit_code: u8,
    /// Why it failed (tampered, inconsistent, unreadable).
    pub failure: Option<Failure>,
    /// Origin from genesis.
    pub origin: Option<String>,
    /// Records verified.
    pub records: u64,
    /// Checkpoints verified.
    pub checkpoints: u64,
    /// Size of the last verified checkpoint.
    pub latest_checkpoint_size: Option<u64>,
    /// Merkle root over the verified records, hex.
    pub root: String,
    /// Chain hash of the last verified record, hex.
    pub head_hash: String,
    /// Time of record 0.
    pub first_record_time: Option<String>,
    /// Time of the last record.
    pub last_record_time: Option<String>,
    /// Last record time, Unix ms (status "as of").
    pub last_record_time_ms: u64,
    /// The pinned genesis ledger key, hex.
    pub genesis_ledger_key: String,
    /// The ledger key in force at the end, hex.
    pub ledger_key_in_force: String,
    /// Key rotations followed.
    pub key_history: Vec<KeyEvent>,
    /// Keys in force at the end.
    pub keys_in_force: Vec<KeyView>,
    /// Records per event kind.
    pub event_counts: BTreeMap<&'static str, u64>,
    /// Integrations, operators, credentials.
    pub stats: Option<SemanticStats>,
    /// The `--since-checkpoint` result.
    pub since_checkpoint: Option<SinceResult>,
    /// First violations (at most 100).
    pub violations: Vec<SemanticViolation>,
    /// All violations.
    pub violations_total: u64,
    /// Bundle bytes read.
    pub bytes: u64,
    /// Wall time of the verification, ms.
    pub elapsed_ms: u64,
    /// The bundle's last checkpoint note (for `--save-checkpoint`).
    #[serde(skip)]
    pub last_checkpoint: Option<String>,
}

/// Observes progress: `(bytes read, records verified)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);
/// Observes every verified record with the keys in force after it.
pub type Sink<'a> = &'a mut dyn FnMut(&Record, &KeyRing);

fn role_name(r: KeyRole) -> &'static str {
    match r {
        KeyRole::Ca => "ca",
        KeyRole::Token => "token",
        KeyRole::Ledger => "ledger",
    }
}

fn key_view(k: &KeyInfo) -> KeyView {
    KeyView {
        role: role_name(k.role),
        algorithm: match k.algorithm {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        },
        label: k.label.clone(),
        fingerprint: hex::encode(k.fingerprint()),
    }
}

struct Run {
    report: AuditReport,
    v: StreamVerifier,
    semantic: Option<SemanticChecker>,
    since: Option<EarlierCheckpoint>,
    since_done: bool,
    key_name: Option<String>,
}

impl Run {
    fn fail(&mut self, outcome: Outcome, check: &str, message: String) {
        self.report.outcome = outcome;
        self.report.failure = Some(Failure {
            check: check.to_owned(),
            message,
        });
    }

    /// At the earlier checkpoint's size: its signature with the key in force
    /// at that size, and its root against the bundle's root at that size.
    fn check_since(&mut self) -> Result<(), String> {
        let Some(since) = &self.since else {
            return Ok(());
        };
        self.since_done = true;
        let size = since.body.size;
        let origin = self.v.origin().unwrap_or_default().to_owned();
        let key = self.v.ledger_key();
        let root = self.v.root();
        let mut result = SinceResult {
            size,
            root: hex::encode(since.body.root),
            consistent: false,
            detail: String::new(),
        };
        let verdict = match checkpoint::open(&since.text, &origin, &key) {
            Err(e) => Err(format!(
                "earlier checkpoint at size {size} is not signed by this ledger's key in force at that size (origin {origin:?}): {e}"
            )),
            Ok(_) if root != since.body.root => Err(format!(
                "fork: the bundle's root at size {size} is {}, the earlier checkpoint says {}",
                hex::encode(root),
                hex::encode(since.body.root)
            )),
            Ok(_) => Ok(()),
        };
        match &verdict {
            Ok(()) => {
                result.consistent = true;
                result.detail = format!(
                    "the bundle ({} records so far) extends the checkpoint at size {size}",
                    self.v.size()
                );
            }
            Err(d) => result.detail.clone_from(d),
        }
        self.report.since_checkpoint = Some(result);
        verdict
    }
}

/// Verifies a bundle read from `input` (see FORMAT.md §12.3). Never panics on
/// hostile input; memory is constant apart from the semantic sets.
pub fn verify_bundle(
    input: impl Read,
    opts: &AuditOptions,
    progress: Progress<'_>,
    sink: Sink<'_>,
) -> AuditReport {
    let started = Instant::now();
    let mut run = Run {
        report: AuditReport {
            outcome: Outcome::Verified,
            exit_code: 0,
            failure: None,
            origin: None,
            records: 0,
            checkpoints: 0,
            latest_checkpoint_size: None,
            root: String::new(),
            head_hash: String::new(),
            first_record_time: None,
            last_record_time: None,
            last_record_time_ms: 0,
            genesis_ledger_key: hex::encode(opts.ledger_key),
            ledger_key_in_force: String::new(),
            key_history: Vec::new(),
            keys_in_force: Vec::new(),
            event_counts: BTreeMap::new(),
            stats: None,
            since_checkpoint: None,
            violations: Vec::new(),
            violations_total: 0,
            bytes: 0,
            elapsed_ms: 0,
            last_checkpoint: None,
        },
        v: StreamVerifier::new(opts.ledger_key),
        semantic: opts
            .semantic
            .then(|| SemanticChecker::with_review_caps(opts.review_caps)),
        since: opts.since.clone(),
        since_done: false,
        key_name: opts.key_name.clone(),
    };
    run_bundle(&mut run, input, progress, sink);
    finish(run, started)
}

fn run_bundle(run: &mut Run, input: impl Read, progress: Progress<'_>, sink: Sink<'_>) {
    let mut reader = match BundleReader::open(input) {
        Ok(r) => r,
        Err(e) => {
            let outcome = if e.is_unreadable() {
                Outcome::Unreadable
            } else {
                Outcome::Tampered
            };
            run.fail(outcome, "bundle", e.to_string());
            return;
        }
    };
    let header = reader.header().clone();
    let mut checkpoints = 0u64;
    let mut last_cp_size: Option<u64> = None;
    if run.since.as_ref().is_some_and(|s| s.body.size == 0) {
        run.since_done = true;
    }
    loop {
        let offset = reader.offset();
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => {
                let outcome = if e.is_unreadable() {
                    Outcome::Unreadable
                } else {
                    Outcome::Tampered
                };
                run.fail(outcome, "bundle", e.to_string());
                return;
            }
        };
        match item {
            BundleItem::Record(bytes) => {
                let rec = match run.v.push_record(bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        run.fail(Outcome::Tampered, e.check(), e.to_string());
                        return;
                    }
                };
                let size = run.v.size();
                if size == 1 {
                    run.report.first_record_time =
                        Some(time::format_rfc3339(rec.timestamp_ms / 1000));
                    if let Some(name) = run.key_name.clone() {
                        if Some(name.as_str()) != run.v.origin() {
                            run.fail(
                                Outcome::Tampered,
                                "ledger_key",
                                format!("the pinned verifier key is named {name:?}, the ledger's origin is {:?}", run.v.origin().unwrap_or_default()),
                            );
                            return;
                        }
                    }
                }
                *run.report.event_counts.entry(rec.event.kind()).or_insert(0) += 1;
                if let Event::KeyRotated(r) = &rec.event {
                    run.report.key_history.push(KeyEvent {
                        index: rec.index,
                        role: role_name(r.role),
                        old_fingerprint: hex::encode(r.old_key.fingerprint()),
                        new_fingerprint: hex::encode(r.new_key.fingerprint()),
                        time: time::format_rfc3339(rec.timestamp_ms / 1000),
                    });
                }
                if let Some(s) = run.semantic.as_mut() {
                    s.push(&rec);
                }
                if let Some(keys) = run.v.keys() {
                    sink(&rec, keys);
                }
                if run.since.as_ref().is_some_and(|s| s.body.size == size) {
                    if let Err(d) = run.check_since() {
                        run.fail(Outcome::Inconsistent, "since_checkpoint", d);
                        // Keep verifying: a tampered bundle must still say so.
                    }
                }
                if size.is_multiple_of(4096) {
                    progress(offset, size);
                }
            }
            BundleItem::Checkpoint(text) => {
                let text = text.to_owned();
                if let Err(e) = run.v.check_checkpoint(&text) {
                    run.fail(Outcome::Tampered, e.check(), e.to_string());
                    return;
                }
                checkpoints += 1;
                last_cp_size = Some(run.v.size());
                run.report.last_checkpoint = Some(text);
            }
            BundleItem::End(t) => {
                let size = run.v.size();
                let mismatch = if t.records != size || header.records != size {
                    Some(format!(
                        "header says {} records, trailer {}, bundle holds {size}",
                        header.records, t.records
                    ))
                } else if t.checkpoints != checkpoints || header.checkpoints != checkpoints {
                    Some(format!(
                        "header says {} checkpoints, trailer {}, bundle holds {checkpoints}",
                        header.checkpoints, t.checkpoints
                    ))
                } else if t.root != run.v.root() || t.head_hash != run.v.head_hash() {
                    Some("trailer root or head hash differs from the recomputed ones".into())
                } else if Some(header.origin.as_str()) != run.v.origin() {
                    Some(format!(
                        "header origin {:?} differs from genesis",
                        header.origin
                    ))
                } else {
                    None
                };
                if let Some(m) = mismatch {
                    run.fail(Outcome::Tampered, "trailer", m);
                    return;
                }
                if size == 0 {
                    run.fail(
                        Outcome::Tampered,
                        "empty",
                        "the bundle holds no records".into(),
                    );
                    return;
                }
                if last_cp_size != Some(size) {
                    run.fail(
                        Outcome::Tampered,
                        "unsigned_tail",
                        format!(
                            "records {}..{size} are not covered by a signed checkpoint (last checkpoint: {})",
                            last_cp_size.unwrap_or(0),
                            last_cp_size.map_or("none".into(), |s| s.to_string())
                        ),
                    );
                    return;
                }
            }
        }
    }
    run.report.checkpoints = checkpoints;
    run.report.latest_checkpoint_size = last_cp_size;
    progress(reader.offset(), run.v.size());
    run.report.bytes = reader.offset();
}

fn finish(mut run: Run, started: Instant) -> AuditReport {
    if run.report.outcome == Outcome::Verified || run.report.outcome == Outcome::Inconsistent {
        if let Some(since) = run.since.clone() {
            if since.body.size == 0 && run.report.since_checkpoint.is_none() {
                let ok = since.body.root == EMPTY_ROOT
                    && checkpoint::open(
                        &since.text,
                        run.v.origin().unwrap_or_default(),
                        &run.v.ledger_key(),
                    )
                    .is_ok();
                run.report.since_checkpoint = Some(SinceResult {
                    size: 0,
                    root: hex::encode(since.body.root),
                    consistent: ok,
                    detail: "earlier checkpoint of the empty tree".into(),
                });
                if !ok {
                    run.fail(
                        Outcome::Inconsistent,
                        "since_checkpoint",
                        "earlier empty-tree checkpoint does not verify".into(),
                    );
                }
            } else if !run.since_done {
                // The bundle never reached size m, so its root at m is unknown: an older
                // bundle of this history and a shorter fork look the same from here.
                let detail = format!(
                    "rollback or fork: the bundle has {} records, fewer than the earlier checkpoint's {}; a bundle of at least {} records tells them apart",
                    run.v.size(),
                    since.body.size,
                    since.body.size
                );
                run.report.since_checkpoint = Some(SinceResult {
                    size: since.body.size,
                    root: hex::encode(since.body.root),
                    consistent: false,
                    detail: detail.clone(),
                });
                run.fail(Outcome::Inconsistent, "since_checkpoint", detail);
            }
        }
    }
    if let Some(s) = run.semantic.as_mut() {
        s.finish();
        run.report.violations = s.violations().to_vec();
        run.report.violations_total = s.total_violations();
        run.report.stats = Some(s.stats());
        if run.report.outcome == Outcome::Verified && s.total_violations() > 0 {
            run.report.outcome = Outcome::Violations;
        }
    }
    let r = &mut run.report;
    r.records = run.v.size();
    r.root = hex::encode(run.v.root());
    r.head_hash = hex::encode(run.v.head_hash());
    r.origin = run.v.origin().map(str::to_owned);
    r.last_record_time_ms = run.v.last_timestamp_ms();
    if r.records > 0 {
        r.last_record_time = Some(time::format_rfc3339(r.last_record_time_ms / 1000));
    }
    r.ledger_key_in_force = hex::encode(run.v.ledger_key());
    r.keys_in_force = run
        .v
        .keys()
        .map(|k| k.keys().iter().map(key_view).collect())
        .unwrap_or_default();
    r.exit_code = r.outcome.exit_code();
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    run.report
}

/// Parses a pinned ledger key: a C2SP verifier key `name+hex8+base64(0x01||key)`,
/// 64 hex digits, or standard base64 of the 32 raw bytes. Returns the key and,
/// for the verifier-key form, its name (which must then equal the origin).
pub fn parse_ledger_key(s: &str) -> Result<([u8; 32], Option<String>), String> {
    use base64::Engine as _;
    let s = s.trim();
    let as_vkey = crate::note::NoteVerifier::parse(s);
    if let Ok(v) = &as_vkey {
        return Ok((v.public_key, Some(v.name.clone())));
    }
    if s.len() == 64 {
        if let Ok(raw) = hex::decode(s) {
            if let Ok(k) = raw.try_into() {
                return Ok((k, None));
            }
        }
    }
    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(s) {
        if let Ok(k) = <[u8; 32]>::try_from(raw.as_slice()) {
            return Ok((k, None));
        }
    }
    match as_vkey {
        Err(e) if s.splitn(3, '+').count() == 3 => Err(format!("verifier key: {e}")),
        _ => Err(
            "expected a verifier key (origin+hex8+base64), 64 hex digits or base64 of 32 bytes"
                .into(),
        ),
    }
}
