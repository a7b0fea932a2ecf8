//! `credmint-audit`: argument parsing, progress bar and printing around
//! [`super::verify_bundle`] and [`super::query`]. Exit codes: FORMAT.md §14.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use super::bench::{generate_bundle, GenOptions};
use super::query::{render_table, QueryCollector, QueryFilter};
use super::{
    parse_ledger_key, render_human, time, verify_bundle, AuditOptions, AuditReport,
    EarlierCheckpoint, Outcome, EXIT_UNWITNESSED, EXIT_USAGE,
};
use crate::governance::ReviewCaps;

/// Offline auditor for credmint ledger export bundles (no network, no HSM).
///
/// Exit codes: 0 verified, 1 semantic violations (bytes and signatures fine),
/// 2 usage, 3 tampered, 4 inconsistent with the earlier checkpoint, 5 unreadable.
#[derive(Debug, Parser)]
#[command(name = "credmint-audit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a bundle: bytes, hash chain, Merkle roots, checkpoint signatures,
    /// key rotations, and the semantic rules.
    Verify(VerifyArgs),
    /// Verify a bundle, then list credentials matching the filters with their status.
    Query(QueryArgs),
    /// Verify a receipt (a c2sp.org/tlog-proof from `/v1/status/.../receipt`) offline:
    /// the checkpoint's signature, the record's inclusion, and witness cosignatures.
    VerifyProof(ProofArgs),
    /// Write a synthetic, semantically valid bundle (benchmarks).
    #[command(hide = true)]
    GenBench(GenArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// The bundle file (`credmint ledger export --out FILE`).
    bundle: PathBuf,
    /// The genesis ledger key, pinned out of band: a verifier key
    /// `origin+hex8+base64`, 64 hex digits, base64 of the 32-byte key, or a file holding one.
    #[arg(long, value_name = "KEY")]
    ledger_key: String,
    /// Print JSON on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Skip the semantic rules (bytes, chain, tree, signatures and keys only).
    #[arg(long)]
    no_semantic: bool,
    /// The appliance's `governance.routine_review_max_days`: how far ahead a registration
    /// or recertification of a routine integration may set review-by.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    routine_review_max_days: u64,
    /// The same for a privileged integration (`governance.privileged_review_max_days`).
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    privileged_review_max_days: u64,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    /// A signed checkpoint seen earlier: the bundle must extend it (detects forks and rollbacks).
    #[arg(long, value_name = "FILE")]
    since_checkpoint: Option<PathBuf>,
    /// A witness whose cosignature (C2SP tlog-cosignature) the `--since-checkpoint` note
    /// must carry: a verifier key `name+hex8+base64(0x04 || key)` or a file holding one.
    /// Repeat for several.
    #[arg(long, value_name = "VKEY", requires = "since_checkpoint")]
    witness: Vec<String>,
    /// How many of the `--witness` keys must have cosigned (default: all of them).
    #[arg(long, value_name = "N", requires = "witness")]
    min_witnesses: Option<usize>,
    /// After a successful verification, write the bundle's last checkpoint here
    /// (keep it for the next `--since-checkpoint`).
    #[arg(long, value_name = "FILE")]
    save_checkpoint: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProofArgs {
    /// The receipt file.
    receipt: PathBuf,
    /// The ledger key in force when the checkpoint was signed (the genesis key unless
    /// the ledger key was rotated): `origin+hex8+base64`, 64 hex digits, base64, or a file.
    #[arg(long, value_name = "KEY")]
    ledger_key: String,
    /// A witness whose cosignature the checkpoint must carry (repeatable).
    #[arg(long, value_name = "VKEY")]
    witness: Vec<String>,
    /// How many of the `--witness` keys must have cosigned (default: all of them).
    #[arg(long, value_name = "N", requires = "witness")]
    min_witnesses: Option<usize>,
    /// Print JSON on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    common: Common,
    /// Credentials of this integration.
    #[arg(long)]
    integration: Option<String>,
    /// Issued while this approval reference was in force for their integration.
    #[arg(long)]
    approval_ref: Option<String>,
    /// Signed by the CA or token key whose SPKI SHA-256 starts with this hex (>= 8 digits).
    #[arg(long, value_name = "FINGERPRINT_HEX")]
    key: Option<String>,
    /// Issued under this operator (integrations they registered, changed or
    /// approved; enrollment tokens and ACME EAB keys they created; their own operator
    /// certificate).
    #[arg(long)]
    operator: Option<String>,
    /// Only credentials issued at or after this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// Status as of this time (default: the bundle's last record time).
    #[arg(long)]
    at: Option<String>,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Number of records.
    #[arg(long)]
    events: u64,
    /// Output bundle.
    #[arg(long)]
    out: PathBuf,
    /// A checkpoint every this many records.
    #[arg(long, default_value_t = 100_000)]
    checkpoint_every: u64,
    /// Do not rotate the ledger key half way.
    #[arg(long)]
    no_rotation: bool,
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    match cli.command {
        Command::Verify(a) => verify(a),
        Command::Query(a) => query(a),
        Command::VerifyProof(a) => verify_proof(a),
        Command::GenBench(a) => gen_bench(a),
    }
}

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("credmint-audit: {msg}");
    EXIT_USAGE
}

fn options(c: &Common, since: Option<EarlierCheckpoint>) -> Result<AuditOptions, String> {
    let text = if Path::new(&c.ledger_key).is_file() {
        std::fs::read_to_string(&c.ledger_key)
            .map_err(|e| format!("--ledger-key {}: {e}", c.ledger_key))?
    } else {
        c.ledger_key.clone()
    };
    let (ledger_key, key_name) =
        parse_ledger_key(&text).map_err(|e| format!("--ledger-key: {e}"))?;
    Ok(AuditOptions {
        ledger_key,
        since,
        key_name,
        semantic: !c.no_semantic,
        review_caps: ReviewCaps {
            routine_days: c.routine_review_max_days,
            privileged_days: c.privileged_review_max_days,
        },
    })
}

/// Opens the bundle; an unopenable file is "unreadable" (exit 5).
fn run(c: &Common, opts: &AuditOptions, sink: super::Sink<'_>) -> AuditReport {
    let file = match File::open(&c.bundle) {
        Ok(f) => f,
        Err(e) => {
            let mut r = verify_bundle(std::io::empty(), opts, &mut |_, _| {}, &mut |_, _| {});
            r.outcome = Outcome::Unreadable;
            r.exit_code = Outcome::Unreadable.exit_code();
            r.failure = Some(super::Failure {
                check: "io".into(),
                message: format!("{}: {e}", c.bundle.display()),
            });
            return r;
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(len);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut progress = |bytes: u64, records: u64| {
        if let Some(pb) = &bar {
            pb.set_position(bytes);
            pb.set_message(format!("{records} records"));
        }
    };
    let report = verify_bundle(
        BufReader::with_capacity(1 << 20, file),
        opts,
        &mut progress,
        sink,
    );
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    report
}

/// Writes to standard output. A closed pipe (`credmint-audit ... | head`) means the reader
/// has what it wanted, not that verification failed: output stops quietly and the exit
/// code stays the outcome's (FORMAT.md §14). `print!` would panic there instead.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("credmint-audit: cannot write to standard output: {e}");
        }
    }
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => emit(&format!("{s}\n")),
        Err(e) => eprintln!("credmint-audit: cannot print JSON: {e}"),
    }
}

/// The `--witness` keys (values or files) and the number required of them.
fn witness_policy(
    given: &[String],
    min: Option<usize>,
) -> Result<(Vec<crate::cosignature::WitnessKey>, usize), String> {
    let mut keys = Vec::new();
    for w in given {
        let text = if Path::new(w).is_file() {
            std::fs::read_to_string(w).map_err(|e| format!("--witness {w}: {e}"))?
        } else {
            w.clone()
        };
        keys.push(
            crate::cosignature::WitnessKey::parse(text.trim())
                .map_err(|e| format!("--witness {w}: {e}"))?,
        );
    }
    let need = min.unwrap_or(keys.len());
    if !keys.is_empty() && (need == 0 || need > keys.len()) {
        return Err(format!(
            "--min-witnesses must be 1 to {} (the --witness keys given)",
            keys.len()
        ));
    }
    Ok((keys, need))
}

/// `verify-proof`: 0 proven, 2 usage, 3 the receipt does not prove its record, 5
/// unreadable, 6 too few cosignatures.
fn verify_proof(a: ProofArgs) -> u8 {
    use crate::receipt::{Receipt, ReceiptError};
    let (keys, need) = match witness_policy(&a.witness, a.min_witnesses) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let key_text = if Path::new(&a.ledger_key).is_file() {
        match std::fs::read_to_string(&a.ledger_key) {
            Ok(t) => t,
            Err(e) => return usage(format!("--ledger-key {}: {e}", a.ledger_key)),
        }
    } else {
        a.ledger_key.clone()
    };
    let (ledger_key, key_name) = match parse_ledger_key(&key_text) {
        Ok(k) => k,
        Err(e) => return usage(format!("--ledger-key: {e}")),
    };
    let text = match std::fs::read_to_string(&a.receipt) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("credmint-audit: {}: {e}", a.receipt.display());
            return Outcome::Unreadable.exit_code();
        }
    };
    let receipt = match Receipt::parse(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credmint-audit: {}: {e}", a.receipt.display());
            return Outcome::Unreadable.exit_code();
        }
    };
    // The checkpoint's origin names the key; a vkey must agree with it.
    let origin =
        key_name.unwrap_or_else(|| receipt.checkpoint.lines().next().unwrap_or("").to_string());
    match receipt.verify(&origin, &ledger_key, &keys, need) {
        Ok(p) => {
            let witnesses: Vec<&str> = p.cosignatures.iter().map(|c| c.witness.as_str()).collect();
            if a.json {
                print_json(&serde_json::json!({
                    "outcome": "proven",
                    "index": p.record.index,
                    "event": p.record.event.kind(),
                    "actor": p.record.actor,
                    "timestamp_ms": p.record.timestamp_ms,
                    "checkpoint_size": p.checkpoint.size,
                    "root": hex::encode(p.checkpoint.root),
                    "witnesses": witnesses,
                }));
            } else {
                emit(&format!(
                    "PROVEN record {} ({}, by {}) is in the checkpoint of size {} of {}\nwitnessed by: {}\n",
                    p.record.index,
                    p.record.event.kind(),
                    p.record.actor,
                    p.checkpoint.size,
                    origin,
                    if witnesses.is_empty() { "-".to_string() } else { witnesses.join(", ") }
                ));
            }
            0
        }
        Err(e @ (ReceiptError::Unwitnessed { .. } | ReceiptError::Cosignature(_))) => {
            eprintln!("credmint-audit: unwitnessed: {e}");
            EXIT_UNWITNESSED
        }
        Err(e) => {
            eprintln!("credmint-audit: the receipt does not prove its record: {e}");
            Outcome::Tampered.exit_code()
        }
    }
}

/// Checks the earlier checkpoint's cosignatures against `--witness` / `--min-witnesses`:
/// `Ok(None)` when satisfied, `Ok(Some(message))` when not (exit 6), `Err` on bad usage.
fn witnessed(a: &VerifyArgs, note: &str) -> Result<Option<String>, String> {
    if a.witness.is_empty() {
        return Ok(None);
    }
    let (keys, need) = witness_policy(&a.witness, a.min_witnesses)?;
    match crate::cosignature::verify(note, &keys) {
        Ok(found) if found.len() >= need => Ok(None),
        Ok(found) => Ok(Some(format!(
            "the earlier checkpoint carries {} of the {need} witness cosignatures required{}",
            found.len(),
            if found.is_empty() {
                String::new()
            } else {
                format!(
                    " (by {})",
                    found
                        .iter()
                        .map(|c| c.witness.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ))),
        Err(e) => Ok(Some(format!("the earlier checkpoint's cosignatures: {e}"))),
    }
}

fn verify(a: VerifyArgs) -> u8 {
    let since = match &a.since_checkpoint {
        None => None,
        Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()) {
            Ok(text) => {
                match witnessed(&a, &text) {
                    Ok(None) => {}
                    Ok(Some(why)) => {
                        eprintln!("credmint-audit: unwitnessed: {why}");
                        return EXIT_UNWITNESSED;
                    }
                    Err(e) => return usage(e),
                }
                match EarlierCheckpoint::parse(&text) {
                    Ok(c) => Some(c),
                    Err(e) => return usage(format!("--since-checkpoint {}: {e}", p.display())),
                }
            }
            Err(e) => return usage(format!("--since-checkpoint {}: {e}", p.display())),
        },
    };
    let opts = match options(&a.common, since) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    let report = run(&a.common, &opts, &mut |_, _| {});
    if a.common.json {
        print_json(&report);
    } else {
        emit(&render_human(&report));
    }
    if let (Some(path), Some(text), Outcome::Verified | Outcome::Violations) =
        (&a.save_checkpoint, &report.last_checkpoint, report.outcome)
    {
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("credmint-audit: cannot write {}: {e}", path.display());
        }
    }
    report.exit_code
}

#[derive(serde::Serialize)]
struct QueryOutput<'a> {
    outcome: Outcome,
    exit_code: u8,
    origin: Option<&'a str>,
    records: u64,
    root: &'a str,
    violations_total: u64,
    as_of: String,
    credentials: Vec<super::query::Credential>,
}

fn query(a: QueryArgs) -> u8 {
    let parse = |s: &Option<String>, flag: &str| -> Result<Option<u64>, String> {
        s.as_deref()
            .map(time::parse_time)
            .transpose()
            .map_err(|e| format!("{flag}: {e}"))
    };
    let (since, at) = match (parse(&a.since, "--since"), parse(&a.at, "--at")) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    let key_prefix = a.key.as_ref().map(|k| k.to_ascii_lowercase());
    if let Some(k) = &key_prefix {
        if k.len() < 8 || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
            return usage("--key: expected 8 to 64 hex digits of a key's SPKI SHA-256");
        }
    }
    let opts = match options(&a.common, None) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    let mut collector = QueryCollector::new(QueryFilter {
        integration: a.integration.clone(),
        approval_ref: a.approval_ref.clone(),
        key_prefix,
        operator: a.operator.clone(),
        since,
    });
    let report = run(&a.common, &opts, &mut |rec, keys| collector.push(rec, keys));
    if !matches!(report.outcome, Outcome::Verified | Outcome::Violations) {
        eprintln!("credmint-audit: refusing to answer from a bundle that does not verify");
        if a.common.json {
            print_json(&report);
        } else {
            emit(&render_human(&report));
        }
        return report.exit_code;
    }
    if report.outcome == Outcome::Violations {
        eprintln!(
            "credmint-audit: warning: the bundle is authentic but has {} semantic violation(s); run `verify` for details",
            report.violations_total
        );
    }
    let at_ms = at.map_or(report.last_record_time_ms, |t| t.saturating_mul(1000));
    let creds = collector.finish(at_ms);
    if a.common.json {
        print_json(&QueryOutput {
            outcome: report.outcome,
            exit_code: report.exit_code,
            origin: report.origin.as_deref(),
            records: report.records,
            root: &report.root,
            violations_total: report.violations_total,
            as_of: time::format_rfc3339(at_ms / 1000),
            credentials: creds,
        });
    } else {
        emit(&format!(
            "verified {} records of {} (root {}); status as of {}\n{}",
            report.records,
            report.origin.as_deref().unwrap_or("-"),
            report.root,
            time::format_rfc3339(at_ms / 1000),
            render_table(&creds)
        ));
    }
    report.exit_code
}

fn gen_bench(a: GenArgs) -> u8 {
    let opts = GenOptions {
        events: a.events,
        checkpoint_every: a.checkpoint_every,
        rotate_ledger_key: !a.no_rotation,
        ..GenOptions::default()
    };
    let result = File::create(&a.out).and_then(|f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let g = generate_bundle(&opts, &mut w)?;
        w.flush()?;
        Ok(g)
    });
    match result {
        Ok(g) => {
            emit(&format!(
                "wrote {}: {} records, {} checkpoints, {} bytes\nledger key: {}\n",
                a.out.display(),
                g.records,
                g.checkpoints,
                g.bytes,
                g.verifier_key
            ));
            0
        }
        Err(e) => usage(format!("gen-bench: {e}")),
    }
}
