//! Keeps FORMAT.md honest: its worked example is recomputed here from fixed
//! inputs and compared byte for byte with the document, so the document
//! cannot drift from the code. Run `cargo test -p credmint-ledger
//! print_format_vectors -- --ignored --nocapture` to regenerate the blocks.

use crate::checkpoint::Checkpoint;
use crate::event::{CertificateIssued, Event, Genesis, KeyInfo, KeyRole, Revoked};
use crate::merkle;
use crate::note;
use crate::record::{Record, ZERO_HASH};
use crate::signer::{DalekSigner, Signer};

/// The worked example's fixed inputs.
fn example_records(ledger_pk: &[u8; 32]) -> Vec<Record> {
    let genesis = Record {
        index: 0,
        timestamp_ms: 1_700_000_000_000,
        actor: "system:init".into(),
        prev_hash: ZERO_HASH,
        event: Event::Genesis(Genesis {
            origin: "example.org/ledger".into(),
            keys: vec![KeyInfo::ed25519(KeyRole::Ledger, "ledger", ledger_pk)],
            config_digest: [0x22; 32],
            ca_certificate_der: vec![0x30, 0x00],
        }),
    };
    let issued = Record {
        index: 1,
        timestamp_ms: 1_700_000_000_001,
        actor: "workload:billing".into(),
        prev_hash: genesis.hash(),
        event: Event::CertificateIssued(CertificateIssued {
            serial: vec![0x01],
            integration: "billing".into(),
            subject: "spiffe://example.org/billing".into(),
            not_before: 1_700_000_000,
            not_after: 1_700_086_400,
            key_fingerprint: [0x33; 32],
        }),
    };
    let revoked = Record {
        index: 2,
        timestamp_ms: 1_700_000_000_002,
        actor: "system:revocation".into(),
        prev_hash: issued.hash(),
        event: Event::Revoked(Revoked {
            serial: vec![0x01],
            reason: 4,
        }),
    };
    vec![genesis, issued, revoked]
}

/// `(name, hex value)` pairs of the worked example, and the signed checkpoint.
fn vectors() -> (Vec<(String, String)>, String) {
    let signer = DalekSigner::from_seed([0x01; 32]);
    let pk = signer.public_key();
    let records = example_records(&pk);
    let mut out = vec![("ledger_key.seed".to_owned(), hex::encode([0x01u8; 32]))];
    out.push(("ledger_key.public".into(), hex::encode(pk)));
    let mut leaves = Vec::new();
    for (r, name) in records.iter().zip(["genesis", "issued", "revoked"]) {
        let bytes = r.encode();
        out.push((format!("{name}.record"), hex::encode(&bytes)));
        out.push((format!("{name}.chain_hash"), hex::encode(r.hash())));
        out.push((format!("{name}.leaf_hash"), hex::encode(r.leaf_hash())));
        leaves.push(r.leaf_hash());
    }
    let root = merkle::root_from_leaf_hashes(&leaves);
    out.push(("root.size3".into(), hex::encode(root)));
    out.push((
        "key_id".into(),
        format!("{:08x}", note::key_id("example.org/ledger", &pk)),
    ));
    let cp = Checkpoint {
        origin: "example.org/ledger".into(),
        size: 3,
        root,
        extensions: vec![],
    };
    let signed = cp.sign(&signer).unwrap_or_default();
    out.push((
        "verifier_key".into(),
        note::verifier_key_string("example.org/ledger", &pk),
    ));
    (out, signed)
}

/// Extracts `name: value` lines from the ```vector block (values of a repeated
/// name are concatenated, so long values can wrap).
fn doc_vectors(doc: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(start) = doc.find("```vector\n") else {
        return out;
    };
    let block = &doc[start + 10..];
    let block = &block[..block.find("```").unwrap_or(block.len())];
    for line in block.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match out.last_mut() {
            Some((lk, lv)) if lk == k => lv.push_str(v),
            _ => out.push((k.to_owned(), v.to_owned())),
        }
    }
    out
}

/// The exact text of the ```note block.
fn doc_note(doc: &str) -> Option<&str> {
    let start = doc.find("```note\n")? + 8;
    let len = doc[start..].find("```")?;
    Some(&doc[start..start + len])
}

/// Hex column of the genesis byte table (rows `| offset | hex | meaning |`).
fn doc_genesis_table(doc: &str) -> String {
    let Some(start) = doc.find("<!-- genesis-table -->") else {
        return String::new();
    };
    let table = &doc[start..];
    let end = table.find("<!-- /genesis-table -->").unwrap_or(table.len());
    table[..end]
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let hexcol = cols.get(2)?.trim_matches('`');
            (cols.len() >= 4 && cols[1].chars().all(|c| c.is_ascii_digit()) && !cols[1].is_empty())
                .then(|| hexcol.replace(' ', ""))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../FORMAT.md");

    #[test]
    fn format_md_worked_example_matches_the_code() {
        let (expected, signed) = vectors();
        let found = doc_vectors(DOC);
        assert_eq!(found, expected, "FORMAT.md ```vector block is stale");
        assert_eq!(
            doc_note(DOC),
            Some(signed.as_str()),
            "FORMAT.md ```note block is stale"
        );
        let genesis_hex = &expected
            .iter()
            .find(|(k, _)| k == "genesis.record")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert_eq!(
            &doc_genesis_table(DOC),
            genesis_hex,
            "FORMAT.md genesis byte table is stale"
        );
        // And the example verifies as a ledger stream with the example key, with actors
        // §13.1 allows for each event.
        let pk = DalekSigner::from_seed([0x01; 32]).public_key();
        let mut semantic = crate::verify::SemanticChecker::new();
        for r in example_records(&pk) {
            semantic.push(&r);
        }
        let actor_rules: Vec<_> = semantic
            .violations()
            .iter()
            .filter(|v| v.rule.starts_with("actor") || v.rule == "unknown_operator")
            .collect();
        assert!(actor_rules.is_empty(), "{actor_rules:?}");
        let mut v = crate::verify::StreamVerifier::new(pk);
        for r in example_records(&pk) {
            assert!(v.push_record(&r.encode()).is_ok());
        }
        assert!(v.check_checkpoint(&signed).is_ok());
    }

    #[test]
    #[ignore = "prints the FORMAT.md blocks for regeneration"]
    fn print_format_vectors() {
        let (vals, signed) = vectors();
        println!("```vector");
        for (k, v) in vals {
            for chunk in v.as_bytes().chunks(64) {
                println!("{k}: {}", String::from_utf8_lossy(chunk));
            }
        }
        println!("```\n\n```note\n{signed}```");
        let pk = DalekSigner::from_seed([0x01; 32]).public_key();
        println!("{}", note::verifier_key_string("example.org/ledger", &pk));
    }
}
