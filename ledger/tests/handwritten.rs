//! Vectors written by hand from FORMAT.md (`testdata/handwritten.vectors`), so the document,
//! not the encoder, is the reference. The file types every field in the document's order
//! with the document's encodings; this runner assembles the bytes with its own few lines of
//! FORMAT.md conventions (big-endian integers, `u32` length prefixes, §2 record header, §4 chain
//! hash) and never calls the crate's encoder to produce them. Then:
//!
//! - `record NAME KIND` / `event NAME KIND`: the bytes decode, to an event of that kind, and the
//!   crate re-encodes them to exactly the typed bytes;
//! - `reject NAME`: the bytes (an event, wrapped in a record header) do not decode;
//! - `ledger NAME RULE AT`: the records replayed through the semantic rules (§13) make `RULE`
//!   fire at index `AT` (`-` for "no violation at all").

use std::collections::HashMap;

use credmint_ledger::verify::SemanticChecker;
use credmint_ledger::Record;
use sha2::{Digest, Sha256};

const FILE: &str = include_str!("../testdata/handwritten.vectors");
/// §9's first timestamp; ledger records default to one second apart from it.
const T0_MS: u64 = 1_700_000_000_000;

#[derive(Debug)]
enum Block {
    Def(Vec<String>),
    Record {
        kind: String,
        lines: Vec<String>,
    },
    Event {
        kind: String,
        lines: Vec<String>,
    },
    Reject(Vec<String>),
    Ledger {
        rule: String,
        at: Option<u64>,
        lines: Vec<String>,
    },
}

fn parse_file() -> Vec<(String, Block)> {
    let mut out = Vec::new();
    let mut lines = FILE.lines().map(strip_comment).filter(|l| !l.is_empty());
    while let Some(head) = lines.next() {
        let words: Vec<&str> = head.split_whitespace().collect();
        let body: Vec<String> = lines
            .by_ref()
            .take_while(|l| *l != "end")
            .map(str::to_owned)
            .collect();
        let name = words.get(1).expect("block name").to_string();
        let arg = |i: usize| words.get(i).map(|s| s.to_string()).expect(head);
        let block = match words[0] {
            "def" => Block::Def(body),
            "record" => Block::Record {
                kind: arg(2),
                lines: body,
            },
            "event" => Block::Event {
                kind: arg(2),
                lines: body,
            },
            "reject" => Block::Reject(body),
            "ledger" => Block::Ledger {
                rule: arg(2),
                at: arg(3).parse().ok(),
                lines: body,
            },
            other => panic!("unknown block {other:?}"),
        };
        out.push((name, block));
    }
    out
}

fn strip_comment(l: &str) -> &str {
    // '#' starts a comment unless it is inside a quoted string.
    let mut quoted = false;
    for (i, c) in l.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return l[..i].trim(),
            _ => {}
        }
    }
    l.trim()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(&s).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn len_prefixed(out: &mut Vec<u8>, v: &[u8]) {
    out.extend_from_slice(&(v.len() as u32).to_be_bytes());
    out.extend_from_slice(v);
}

/// Assembles field lines (FORMAT.md conventions) into bytes.
fn assemble(lines: &[String], defs: &HashMap<String, Vec<String>>) -> Vec<u8> {
    let mut stack: Vec<Vec<u8>> = vec![Vec::new()];
    assemble_into(lines, defs, &mut stack);
    assert_eq!(stack.len(), 1, "unbalanced braces in {lines:?}");
    stack.pop().unwrap_or_default()
}

fn assemble_into(lines: &[String], defs: &HashMap<String, Vec<String>>, stack: &mut Vec<Vec<u8>>) {
    for line in lines {
        let (op, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let arg = arg.trim();
        if op == "use" {
            let frag = defs.get(arg).unwrap_or_else(|| panic!("no def {arg:?}"));
            assemble_into(frag, defs, stack);
            continue;
        }
        if op == "}" {
            let inner = stack.pop().expect("brace");
            len_prefixed(stack.last_mut().expect("outer"), &inner);
            continue;
        }
        if arg == "{" {
            // `body {`, `vec {` ...: a u32 length-prefixed group.
            stack.push(Vec::new());
            continue;
        }
        let out = stack.last_mut().expect("buffer");
        let num = || -> u64 { arg.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")) };
        match op {
            "u8" => out.push(u8::try_from(num()).expect("u8")),
            "u16" => out.extend_from_slice(&u16::try_from(num()).expect("u16").to_be_bytes()),
            "u32" => out.extend_from_slice(&u32::try_from(num()).expect("u32").to_be_bytes()),
            "u64" => out.extend_from_slice(&num().to_be_bytes()),
            "hex" => out.extend_from_slice(&unhex(arg)),
            "bytes" => len_prefixed(out, &unhex(arg)),
            "str" => {
                let s = arg
                    .strip_prefix('"')
                    .and_then(|a| a.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("{line:?}: strings are quoted"));
                len_prefixed(out, s.as_bytes());
            }
            "fill" => {
                let (b, n) = arg.split_once(' ').expect("fill BYTE COUNT");
                let b = unhex(b)[0];
                out.extend(std::iter::repeat_n(b, n.parse().expect("count")));
            }
            "sha256" => out.extend_from_slice(&Sha256::digest(unhex(arg))),
            other => panic!("unknown field op {other:?} in {line:?}"),
        }
    }
}

/// §2 record header (version 1, index, timestamp, actor, prev_hash) followed by `event`.
fn record_bytes(index: u64, ts: u64, actor: &str, prev: &[u8; 32], event: &[u8]) -> Vec<u8> {
    let mut out = vec![0x01];
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    len_prefixed(&mut out, actor.as_bytes());
    out.extend_from_slice(prev);
    out.extend_from_slice(event);
    out
}

struct Vectors {
    blocks: Vec<(String, Block)>,
    defs: HashMap<String, Vec<String>>,
}

impl Vectors {
    fn load() -> Self {
        let blocks = parse_file();
        let mut defs = HashMap::new();
        for (name, b) in &blocks {
            let lines = match b {
                Block::Def(l) | Block::Event { lines: l, .. } => l.clone(),
                _ => continue,
            };
            assert!(
                defs.insert(name.clone(), lines).is_none(),
                "{name} defined twice"
            );
        }
        Vectors { blocks, defs }
    }

    /// The records of a ledger block, chained per §4 (`include NAME` splices another ledger).
    fn ledger(&self, lines: &[String]) -> Vec<Vec<u8>> {
        let mut flat = Vec::new();
        self.flatten(lines, &mut flat);
        let mut prev = [0u8; 32];
        let mut out = Vec::new();
        for (i, line) in flat.iter().enumerate() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let (actor, event) = (w[0], w[1]);
            let ts = w
                .get(2)
                .map_or(T0_MS + 1000 * i as u64, |t| t.parse().expect("ms"));
            let ev = assemble(&[format!("use {event}")], &self.defs);
            let bytes = record_bytes(i as u64, ts, actor, &prev, &ev);
            prev = Sha256::digest(&bytes).into();
            out.push(bytes);
        }
        out
    }

    fn flatten(&self, lines: &[String], out: &mut Vec<String>) {
        for l in lines {
            if let Some(name) = l.strip_prefix("include ") {
                let inner = self
                    .blocks
                    .iter()
                    .find_map(|(n, b)| match b {
                        Block::Ledger { lines, .. } if n == name.trim() => Some(lines),
                        _ => None,
                    })
                    .unwrap_or_else(|| panic!("no ledger {name:?}"));
                self.flatten(inner, out);
            } else {
                out.push(l.clone());
            }
        }
    }
}

fn decode_exactly(name: &str, bytes: &[u8]) -> Record {
    let rec = Record::decode(bytes).unwrap_or_else(|e| panic!("{name}: does not decode: {e}"));
    assert_eq!(
        rec.encode(),
        bytes,
        "{name}: re-encoding differs from the typed bytes"
    );
    rec
}

#[test]
fn every_event_type_decodes_from_its_hand_typed_bytes() {
    let v = Vectors::load();
    let mut tags = std::collections::BTreeSet::new();
    for (name, b) in &v.blocks {
        let (bytes, kind) = match b {
            Block::Record { kind, lines } => (assemble(lines, &v.defs), kind),
            Block::Event { kind, lines } => {
                let ev = assemble(lines, &v.defs);
                (record_bytes(1, T0_MS, "system:test", &[0; 32], &ev), kind)
            }
            _ => continue,
        };
        let rec = decode_exactly(name, &bytes);
        assert_eq!(rec.event.kind(), kind, "{name}");
        tags.insert(rec.event.tag());
    }
    assert_eq!(
        tags,
        (1..=22).collect(),
        "one hand-typed vector per event tag"
    );
}

#[test]
fn hand_typed_invalid_records_are_rejected() {
    let v = Vectors::load();
    let mut n = 0;
    for (name, b) in &v.blocks {
        if let Block::Reject(lines) = b {
            let ev = assemble(lines, &v.defs);
            let bytes = record_bytes(1, T0_MS, "system:test", &[0; 32], &ev);
            assert!(Record::decode(&bytes).is_err(), "{name}: decoded");
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} reject vectors");
}

#[test]
fn every_semantic_rule_fires_on_its_hand_written_ledger() {
    let v = Vectors::load();
    let mut rules = std::collections::BTreeSet::new();
    for (name, b) in &v.blocks {
        let Block::Ledger { rule, at, lines } = b else {
            continue;
        };
        let mut checker = SemanticChecker::new();
        for (i, bytes) in v.ledger(lines).iter().enumerate() {
            let rec = decode_exactly(&format!("{name} record {i}"), bytes);
            checker.push(&rec);
        }
        checker.finish();
        let found = checker.violations();
        match at {
            None => assert!(
                found.is_empty(),
                "{name}: expected no violation, got {found:#?}"
            ),
            Some(at) => {
                assert!(
                    found.iter().any(|x| x.rule == rule && x.index == *at),
                    "{name}: expected {rule} at {at}, got {found:#?}"
                );
                rules.insert(rule.clone());
            }
        }
    }
    // FORMAT.md §13 lists these; each needs a vector.
    let doc = include_str!("../FORMAT.md");
    let section =
        &doc[doc.find("## 13. Semantic rules").expect("§13")..doc.find("## 14.").expect("§14")];
    let mut missing = Vec::new();
    for rule in doc_rule_names(section) {
        if !rules.contains(&rule) {
            missing.push(rule);
        }
    }
    assert!(
        missing.is_empty(),
        "rules of FORMAT.md §13 without a vector: {missing:?}"
    );
}

/// Backquoted snake_case names in §13 that look like rule names (contain '_' and no ':').
fn doc_rule_names(section: &str) -> Vec<String> {
    const NOT_RULES: &[&str] = &[
        "timestamp_ms",
        "expires_at",
        "not_after",
        "not_before",
        "max_ttl_secs",
        "review_by",
        "issued_at",
        "allow_server_auth",
        "approval_ref",
        "request_index",
        "key_fingerprint",
        "spec.name",
        "requested_by",
        "approved_by",
        "may_approve",
        "spki_der",
        "credmint_ledger::governance::may_approve",
        "privileged_review_max_days",
        "routine_review_max_days",
    ];
    let mut out = Vec::new();
    for piece in section.split('`').skip(1).step_by(2) {
        let looks = piece.contains('_')
            && piece.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !NOT_RULES.contains(&piece);
        if looks && !out.iter().any(|r: &String| r == piece) {
            out.push(piece.to_owned());
        }
    }
    out
}
