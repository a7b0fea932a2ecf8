//! Export and byte-level verification: honest bundles pass, every kind of
//! tampering is caught with the right outcome, forks and rollbacks are
//! inconsistent with the earlier checkpoint, and key rotations are followed.

use std::sync::OnceLock;

use credmint_ledger::audit::bench::{generate_bundle, GenOptions};
use credmint_ledger::audit::Outcome;
use credmint_ledger::checkpoint::Checkpoint;
use credmint_ledger::event::{Event, KeyInfo, KeyRole, KeyRotated, Revoked};
use credmint_ledger::export::{export_bundle, export_to_file, BundleWriter, ExportError};
use credmint_ledger::merkle::{leaf_hash, Frontier};
use credmint_ledger::note::Note;
use credmint_ledger::record::{chain_hash, ZERO_HASH};
use credmint_ledger::{verify_ledger, DalekSigner, Ledger, Record, Signer, StoreError};
use p256::ecdsa::signature::Signer as _;
use proptest::prelude::*;

use crate::fixture::*;

/// `(kind, payload)` of every frame; the first 17 bytes are magic + version.
pub fn frames(bundle: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 17;
    while at < bundle.len() {
        let kind = bundle[at];
        let len = u32::from_be_bytes(bundle[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((kind, bundle[at + 5..at + 5 + len].to_vec()));
        at += 5 + len;
    }
    out
}

/// Byte offset of each frame's kind byte.
fn frame_offsets(bundle: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 17;
    while at < bundle.len() {
        let len = u32::from_be_bytes(bundle[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 5 + len;
    }
    out
}

pub fn assemble(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"credmint-bundle\n\x01".to_vec();
    for (k, p) in frames {
        out.push(*k);
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Rewrites header and trailer to match the frames (what a careful attacker does).
fn fix_counts(fr: &mut [(u8, Vec<u8>)]) {
    let records: Vec<&Vec<u8>> = fr.iter().filter(|f| f.0 == 2).map(|f| &f.1).collect();
    let cps = fr.iter().filter(|f| f.0 == 3).count() as u64;
    let mut frontier = Frontier::new();
    for r in &records {
        frontier.push(leaf_hash(r), |_, _, _| {});
    }
    let head = records.last().map(|r| chain_hash(r)).unwrap_or(ZERO_HASH);
    let n = records.len() as u64;
    let root = frontier.root();
    for f in fr.iter_mut() {
        if f.0 == 1 {
            f.1[..8].copy_from_slice(&n.to_be_bytes());
            f.1[8..16].copy_from_slice(&cps.to_be_bytes());
        }
        if f.0 == 4 {
            let mut t = n.to_be_bytes().to_vec();
            t.extend_from_slice(&cps.to_be_bytes());
            t.extend_from_slice(&root);
            t.extend_from_slice(&head);
            f.1 = t;
        }
    }
}

/// Re-chains decoded records, recomputes every root and re-signs a checkpoint
/// at each of `cp_sizes` with `signer`: a fully consistent forgery.
fn forge(records: Vec<Record>, cp_sizes: &[u64], signer: &dyn Signer, origin: &str) -> Vec<u8> {
    let mut w = BundleWriter::new(
        Vec::new(),
        origin,
        records.len() as u64,
        cp_sizes.len() as u64,
    )
    .unwrap();
    let mut frontier = Frontier::new();
    let mut prev = ZERO_HASH;
    for (i, mut r) in records.into_iter().enumerate() {
        r.index = i as u64;
        r.prev_hash = prev;
        let b = r.encode();
        w.record(&b).unwrap();
        frontier.push(leaf_hash(&b), |_, _, _| {});
        prev = chain_hash(&b);
        if cp_sizes.contains(&frontier.size()) {
            let cp = Checkpoint {
                origin: origin.into(),
                size: frontier.size(),
                root: frontier.root(),
                extensions: vec![],
            };
            w.checkpoint(&cp.sign(signer).unwrap()).unwrap();
        }
    }
    w.finish(&frontier.root(), &prev).unwrap().0
}

fn decoded_records(bundle: &[u8]) -> Vec<Record> {
    frames(bundle)
        .into_iter()
        .filter(|f| f.0 == 2)
        .map(|f| Record::decode(&f.1).unwrap())
        .collect()
}

fn checkpoint_sizes(bundle: &[u8]) -> Vec<u64> {
    frames(bundle)
        .into_iter()
        .filter(|f| f.0 == 3)
        .map(|f| {
            let n = Note::parse(std::str::from_utf8(&f.1).unwrap()).unwrap();
            Checkpoint::parse_body(&n.text).unwrap().size
        })
        .collect()
}

/// A generated honest bundle with a ledger-key rotation and several checkpoints.
fn honest() -> &'static (Vec<u8>, [u8; 32]) {
    static B: OnceLock<(Vec<u8>, [u8; 32])> = OnceLock::new();
    B.get_or_init(|| {
        let opts = GenOptions {
            events: 150,
            checkpoint_every: 40,
            ..GenOptions::default()
        };
        let mut out = Vec::new();
        let g = generate_bundle(&opts, &mut out).unwrap();
        (out, g.ledger_key)
    })
}

#[test]
fn generated_bundle_verifies_with_rotation_and_all_semantics() {
    let (b, key) = honest();
    let r = verify_with(b, *key);
    assert_eq!(
        r.outcome,
        Outcome::Verified,
        "{:?} {:?}",
        r.failure,
        r.violations
    );
    assert_eq!(r.records, 150);
    assert_eq!(r.checkpoints, 4);
    assert_eq!(r.key_history.len(), 1);
    assert_ne!(r.ledger_key_in_force, r.genesis_ledger_key);
}

#[test]
fn export_streams_records_and_checkpoints_and_verifies() {
    let mut fx = Fx::new();
    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let now = fx.now_s();
    fx.push("workload:billing", cert(&[0x70, 1], "billing", now, 3600));
    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    fx.push(
        "operator:bob",
        Event::Revoked(Revoked {
            serial: vec![0x70, 1],
            reason: 1,
        }),
    );
    let b = fx.bundle();
    let r = verify(&b, None);
    assert_eq!(
        r.outcome,
        Outcome::Verified,
        "{:?} {:?}",
        r.failure,
        r.violations
    );
    assert_eq!((r.records, r.checkpoints), (6, 3));
    assert_eq!(r.root, hex::encode(fx.ledger.root()));

    let path = fx.dir.path().join("out").join("ledger.bundle");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let s = export_to_file(&fx.ledger, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b);
    assert_eq!(
        (s.records, s.checkpoints, s.unsigned_tail, s.bytes),
        (6, 3, 0, b.len() as u64)
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp file is left behind");
}

#[test]
fn export_stops_at_the_last_signed_checkpoint() {
    let mut fx = Fx::new();
    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let now = fx.now_s();
    fx.push("workload:billing", cert(&[0x70, 2], "billing", now, 3600));
    let mut out = Vec::new();
    let s = export_bundle(&fx.ledger, &mut out).unwrap();
    assert_eq!((s.records, s.unsigned_tail), (4, 1));
    assert_eq!(verify(&out, None).outcome, Outcome::Verified);
}

#[test]
fn export_without_any_checkpoint_is_refused() {
    let fx = Fx::new();
    let err = export_bundle(&fx.ledger, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, ExportError::NoCheckpoint), "{err}");
}

#[test]
fn export_during_appends_is_never_torn() {
    let fx = Fx::new();
    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let now = fx.now_s();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..40u8 {
                fx.ledger
                    .append_batch(vec![credmint_ledger::NewEntry {
                        timestamp_ms: fx.ts + 1000,
                        actor: "workload:billing".into(),
                        event: cert(&[0x71, i], "billing", now, 3600),
                    }])
                    .unwrap();
                if i % 3 == 0 {
                    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
                }
            }
        });
        for _ in 0..10 {
            let mut out = Vec::new();
            export_bundle(&fx.ledger, &mut out).unwrap();
            let r = verify(&out, None);
            assert_eq!(r.outcome, Outcome::Verified, "{:?}", r.failure);
        }
    });
}

fn rotation(role: KeyRole, old: KeyInfo, new: KeyInfo) -> KeyRotated {
    KeyRotated {
        role,
        old_key: old,
        new_key: new,
        ca_certificate_der: vec![],
        cross_certificate_der: vec![],
        old_signature: vec![],
        new_signature: vec![],
    }
}

fn ledger_rotation(old: &DalekSigner, new: &DalekSigner) -> KeyRotated {
    let mut r = rotation(
        KeyRole::Ledger,
        KeyInfo::ed25519(KeyRole::Ledger, "ledger", &old.public_key()),
        KeyInfo::ed25519(KeyRole::Ledger, "ledger-2", &new.public_key()),
    );
    let msg = r.signed_message(ORIGIN);
    r.old_signature = old.sign(&msg).unwrap().to_vec();
    r.new_signature = new.sign(&msg).unwrap().to_vec();
    r
}

fn ca_rotation(old: u8, new: u8) -> KeyRotated {
    let mut r = rotation(KeyRole::Ca, ca_info(old), ca_info(new));
    let msg = r.signed_message(ORIGIN);
    let sig = |k: u8| -> Vec<u8> {
        let s: p256::ecdsa::Signature = ca_key(k).sign(&msg);
        s.to_der().as_bytes().to_vec()
    };
    r.old_signature = sig(old);
    r.new_signature = sig(new);
    r
}

#[test]
fn ledger_key_rotation_moves_checkpoint_signing_to_the_new_key() {
    let mut fx = Fx::new();
    fx.ledger.sign_checkpoint(&fx.signer).unwrap();
    let new = DalekSigner::from_seed([0x22; 32]);
    fx.push(
        "operator:alice",
        Event::KeyRotated(ledger_rotation(&fx.signer, &new)),
    );
    let err = fx.ledger.sign_checkpoint(&fx.signer).unwrap_err();
    assert!(matches!(err, StoreError::WrongLedgerKey { .. }), "{err}");
    fx.ledger.sign_checkpoint(&new).unwrap();
    assert_eq!(fx.ledger.ledger_key(), new.public_key());
    assert_eq!(
        verify_ledger(&fx.ledger, &ledger_signer().public_key())
            .unwrap()
            .records,
        5
    );

    // Reopening rebuilds the key in force from the rotation list.
    let path = fx.dir.path().join("ledger.redb");
    let Fx { dir, ledger, .. } = fx;
    drop(ledger);
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.ledger_key(), new.public_key());
    let fx = Fx {
        dir,
        ledger,
        signer: new,
        ts: T0_MS + 10_000,
    };
    let r = fx.verify();
    assert_eq!(
        r.outcome,
        Outcome::Verified,
        "{:?} {:?}",
        r.failure,
        r.violations
    );
    assert_eq!(r.key_history.len(), 1);
}

#[test]
fn ecdsa_ca_rotation_is_followed_and_bad_rotations_are_refused() {
    let mut fx = Fx::new();
    fx.push("operator:alice", Event::KeyRotated(ca_rotation(1, 2)));
    let r = fx.verify();
    assert_eq!(
        r.outcome,
        Outcome::Verified,
        "{:?} {:?}",
        r.failure,
        r.violations
    );
    assert!(r
        .keys_in_force
        .iter()
        .any(|k| k.fingerprint == hex::encode(ca_info(2).fingerprint())));

    // The store refuses: a rotation from a key no longer in force, a bad signature.
    for bad in [ca_rotation(1, 3), {
        let mut r = ca_rotation(2, 3);
        r.new_signature = r.old_signature.clone();
        r
    }] {
        let err = fx
            .ledger
            .append_batch(vec![credmint_ledger::NewEntry {
                timestamp_ms: fx.ts + 1000,
                actor: "operator:alice".into(),
                event: Event::KeyRotated(bad),
            }])
            .unwrap_err();
        assert!(err.to_string().contains("key rotation refused"), "{err}");
    }

    // The verifier refuses a forged rotation that skipped the store.
    let mut recs = decoded_records(&fx.bundle());
    let mut forged = ca_rotation(2, 3);
    forged.old_signature = forged.new_signature.clone();
    recs.push(Record {
        index: 0,
        timestamp_ms: fx.ts + 5000,
        actor: "operator:alice".into(),
        prev_hash: ZERO_HASH,
        event: Event::KeyRotated(forged),
    });
    let n = recs.len() as u64;
    let b = forge(recs, &[n], &ledger_signer(), ORIGIN);
    let r = verify(&b, None);
    assert_eq!(r.outcome, Outcome::Tampered);
    assert_eq!(r.failure.unwrap().check, "key_rotation");
}

#[test]
fn fork_and_rollback_are_inconsistent_with_the_earlier_checkpoint() {
    // Two appliances from the same genesis diverge after it.
    let mut a = Fx::new();
    let mut b = Fx::new();
    let now = a.now_s();
    a.push("workload:billing", cert(&[0x72, 1], "billing", now, 3600));
    b.push("workload:billing", cert(&[0x72, 2], "billing", now, 3600));
    let cp_a = a.ledger.sign_checkpoint(&a.signer).unwrap();
    b.push("workload:billing", cert(&[0x72, 3], "billing", now, 3600));
    let bundle_b = b.bundle();
    let bundle_a_old = a.bundle();

    assert_eq!(verify(&bundle_b, None).outcome, Outcome::Verified);
    let r = verify(&bundle_b, Some(&cp_a));
    assert_eq!(r.outcome, Outcome::Inconsistent, "{:?}", r.since_checkpoint);
    assert!(r.since_checkpoint.unwrap().detail.contains("fork"));

    // Rollback: an older bundle than a checkpoint seen since.
    a.push("workload:billing", cert(&[0x72, 4], "billing", now, 3600));
    let cp_a_new = a.ledger.sign_checkpoint(&a.signer).unwrap();
    let r = verify(&bundle_a_old, Some(&cp_a_new));
    assert_eq!(r.outcome, Outcome::Inconsistent);
    assert!(r.failure.unwrap().message.contains("rollback"));

    // The honest sequence passes: the newer bundle extends the older checkpoint.
    let bundle_a_new = a.bundle();
    let r = verify(&bundle_a_new, Some(&cp_a));
    assert_eq!(r.outcome, Outcome::Verified, "{:?}", r.failure);
    assert!(r.since_checkpoint.unwrap().consistent);

    // A checkpoint signed by a stranger's key is not this ledger's past.
    let body = Note::parse(&cp_a).unwrap().text;
    let stranger =
        credmint_ledger::note::sign_note(&body, ORIGIN, &DalekSigner::from_seed([0x66; 32]))
            .unwrap();
    assert_eq!(
        verify(&bundle_a_new, Some(&stranger)).outcome,
        Outcome::Inconsistent
    );
    // Tampering outranks inconsistency.
    let mut t = bundle_b.clone();
    let mid = t.len() / 2;
    t[mid] ^= 1;
    assert_eq!(verify(&t, Some(&cp_a)).outcome, Outcome::Tampered);
}

#[test]
fn garbage_and_truncation_are_unreadable() {
    let (b, key) = honest();
    assert_eq!(verify_with(b"", *key).outcome, Outcome::Unreadable);
    assert_eq!(
        verify_with(b"PK\x03\x04 not a bundle", *key).outcome,
        Outcome::Unreadable
    );
    for cut in [5, 17, 18, 30, b.len() / 2, b.len() - 1] {
        assert_eq!(
            verify_with(&b[..cut], *key).outcome,
            Outcome::Unreadable,
            "cut at {cut}"
        );
    }
    let mut v2 = b.clone();
    v2[16] = 2;
    assert_eq!(verify_with(&v2, *key).outcome, Outcome::Unreadable);
    let mut extra = b.clone();
    extra.push(0);
    assert_eq!(verify_with(&extra, *key).outcome, Outcome::Tampered);
}

#[test]
fn a_record_appended_without_a_signature_is_rejected() {
    let (b, key) = honest();
    // Every original frame (and signature) stays; one well-chained record is
    // appended after the last checkpoint, and header and trailer are fixed up.
    let recs = decoded_records(b);
    let mut fr = frames(b);
    let new_bytes = {
        let mut r = recs.last().unwrap().clone();
        r.index = recs.len() as u64;
        r.timestamp_ms += 1;
        r.prev_hash = chain_hash(&fr.iter().rev().find(|f| f.0 == 2).unwrap().1);
        r.encode()
    };
    let trailer = fr.pop().unwrap();
    fr.push((2, new_bytes));
    fr.push(trailer);
    fix_counts(&mut fr);
    let r = verify_with(&assemble(&fr), *key);
    assert_eq!(r.outcome, Outcome::Tampered);
    assert_eq!(r.failure.unwrap().check, "unsigned_tail");
}

#[derive(Debug, Clone)]
enum Structural {
    Delete(usize),
    Duplicate(usize),
    Swap(usize),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_flip_is_rejected_with_the_right_outcome(pos in any::<prop::sample::Index>(), x in 1u8..) {
        let (b, key) = honest();
        let p = pos.index(b.len());
        let mut t = b.clone();
        t[p] ^= x;
        let r = verify_with(&t, *key);
        let in_frame_head = frame_offsets(b).iter().any(|(at, _)| p >= *at && p < at + 5);
        if p < 17 {
            prop_assert_eq!(r.outcome, Outcome::Unreadable);
        } else if in_frame_head {
            prop_assert!(matches!(r.outcome, Outcome::Tampered | Outcome::Unreadable), "{:?}", r.outcome);
        } else {
            prop_assert_eq!(r.outcome, Outcome::Tampered, "flip at {} of {}: {:?}", p, b.len(), r.failure);
        }
    }

    #[test]
    fn deleted_duplicated_or_reordered_records_are_tampering(
        which in 0usize..3, i in any::<prop::sample::Index>(), fix in any::<bool>()
    ) {
        let (b, key) = honest();
        let mut fr = frames(b);
        let recs: Vec<usize> = fr.iter().enumerate().filter(|(_, f)| f.0 == 2).map(|(i, _)| i).collect();
        let at = recs[i.index(recs.len() - 1)];
        let op = match which { 0 => Structural::Delete(at), 1 => Structural::Duplicate(at), _ => Structural::Swap(at) };
        match op {
            Structural::Delete(at) => { fr.remove(at); }
            Structural::Duplicate(at) => { let f = fr[at].clone(); fr.insert(at, f); }
            Structural::Swap(at) => {
                let next = recs.iter().copied().find(|&j| j > at).unwrap();
                fr.swap(at, next);
            }
        }
        if fix { fix_counts(&mut fr); }
        let r = verify_with(&assemble(&fr), *key);
        prop_assert_eq!(r.outcome, Outcome::Tampered, "{:?}", r.failure);
    }

    #[test]
    fn a_re_signed_rewrite_with_another_key_is_tampering(i in any::<prop::sample::Index>(), replace_genesis_key in any::<bool>()) {
        let (b, key) = honest();
        let mut recs = decoded_records(b);
        let attacker = DalekSigner::from_seed([0x99; 32]);
        let n = recs.len();
        let target = 1 + i.index(n - 1);
        recs[target].actor = "operator:mallory".into();
        if replace_genesis_key {
            if let Event::Genesis(g) = &mut recs[0].event {
                for k in &mut g.keys {
                    if k.role == KeyRole::Ledger {
                        *k = KeyInfo::ed25519(KeyRole::Ledger, "ledger", &attacker.public_key());
                    }
                }
            }
        }
        let origin = "bench.credmint.example/ledger";
        let forged = forge(recs, &checkpoint_sizes(b), &attacker, origin);
        let r = verify_with(&forged, *key);
        prop_assert_eq!(r.outcome, Outcome::Tampered, "{:?}", r.failure);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn honest_bundles_always_verify(events in 67u64..200, every in 7u64..80, rotate in any::<bool>()) {
        let opts = GenOptions { events, checkpoint_every: every, rotate_ledger_key: rotate, ..GenOptions::default() };
        let mut out = Vec::new();
        let g = generate_bundle(&opts, &mut out).unwrap();
        let r = verify_with(&out, g.ledger_key);
        prop_assert_eq!(r.outcome, Outcome::Verified, "{:?} {:?}", r.failure, r.violations);
        prop_assert_eq!(r.records, events);
        // And the bundle extends each of its own checkpoints.
        let r = verify_bundle_since(&out, g.ledger_key, &g.last_checkpoint);
        prop_assert_eq!(r, Outcome::Verified);
    }
}

fn verify_bundle_since(b: &[u8], key: [u8; 32], cp: &str) -> Outcome {
    let opts = credmint_ledger::audit::AuditOptions {
        ledger_key: key,
        since: Some(credmint_ledger::audit::EarlierCheckpoint::parse(cp).unwrap()),
        key_name: None,
        semantic: false,
        review_caps: Default::default(),
    };
    credmint_ledger::audit::verify_bundle(b, &opts, &mut |_, _| {}, &mut |_, _| {}).outcome
}

/// §12.1: at most one checkpoint per size. A repeated frame (identical, or the same size
/// with one more cosignature line) with the unsigned counts raised to match is tampering.
#[test]
fn a_duplicated_checkpoint_frame_is_tampering() {
    let (b, key) = honest();
    let fr = frames(b);
    let cp_at = fr.iter().position(|f| f.0 == 3).unwrap();
    let cp = fr[cp_at].1.clone();
    let mut cosigned = cp.clone();
    let extra = credmint_ledger::note::NoteSignature {
        name: "witness.example".into(),
        key_id: 7,
        signature: vec![0x55; 64],
    };
    cosigned.extend_from_slice(extra.to_line().as_bytes());
    // The cosigned note alone, in place of the original, is still fine.
    let mut alone = fr.clone();
    alone[cp_at].1 = cosigned.clone();
    assert_eq!(
        verify_with(&assemble(&alone), *key).outcome,
        Outcome::Verified
    );
    for dup in [cp, cosigned] {
        let mut t = fr.clone();
        t.insert(cp_at + 1, (3, dup));
        fix_counts(&mut t);
        let r = verify_with(&assemble(&t), *key);
        assert_eq!(r.outcome, Outcome::Tampered, "{:?}", r.failure);
        assert_eq!(r.failure.unwrap().check, "checkpoint_duplicate");
    }
}

/// §12.3 as rewritten: the counts are unsigned, so a bundle alone does not prove that no
/// intermediate checkpoint was dropped or that it is the newest; an earlier checkpoint
/// (`--since-checkpoint`) proves the bundle is not older than it.
#[test]
fn what_a_bundle_alone_does_not_prove() {
    let (b, key) = honest();
    let fr = frames(b);
    let cps: Vec<usize> = fr
        .iter()
        .enumerate()
        .filter(|(_, f)| f.0 == 3)
        .map(|(i, _)| i)
        .collect();
    assert!(cps.len() >= 3);
    // An intermediate checkpoint removed, counts fixed: still verifies.
    let mut dropped = fr.clone();
    dropped.remove(cps[1]);
    fix_counts(&mut dropped);
    assert_eq!(
        verify_with(&assemble(&dropped), *key).outcome,
        Outcome::Verified
    );
    // Cut right after an earlier checkpoint, trailer rebuilt: still verifies ...
    let mut cut: Vec<_> = fr[..=cps[1]].to_vec();
    cut.push(fr.last().unwrap().clone());
    fix_counts(&mut cut);
    let cut = assemble(&cut);
    assert_eq!(verify_with(&cut, *key).outcome, Outcome::Verified);
    // ... but not against the later checkpoint the auditor kept.
    let last = std::str::from_utf8(&fr[*cps.last().unwrap()].1).unwrap();
    assert_eq!(verify_bundle_since(&cut, *key, last), Outcome::Inconsistent);
}

/// §14 precedence: the verifier streams and stops at the first failing byte, so a changed
/// record before a truncation point is tampering (3), a truncation before any change is
/// unreadable (5).
#[test]
fn the_first_failure_in_the_stream_decides_the_outcome() {
    let (b, key) = honest();
    let offs = frame_offsets(b);
    let (rec_at, rec_len) = offs[3];
    let flip_at = rec_at + 5 + rec_len / 2;
    let mut t = b.clone();
    t[flip_at] ^= 0x40;
    let r = verify_with(&t[..t.len() - 1], *key);
    assert_eq!(r.outcome, Outcome::Tampered, "{:?}", r.failure);
    assert_eq!(r.exit_code, 3);
    let r = verify_with(&t[..flip_at - 1], *key);
    assert_eq!(r.outcome, Outcome::Unreadable, "{:?}", r.failure);
}

/// §14.1: an earlier checkpoint larger than the bundle cannot be checked against it; the
/// bundle is either older (rollback) or from a fork, and the report says so.
#[test]
fn a_bundle_shorter_than_the_earlier_checkpoint_is_reported_as_rollback_or_fork() {
    let mut a = Fx::new();
    let mut b = Fx::new();
    let now = a.now_s();
    for i in 0..3 {
        a.push("workload:billing", cert(&[0x73, i], "billing", now, 3600));
    }
    b.push("workload:billing", cert(&[0x74, 1], "billing", now, 3600));
    let cp_a = a.ledger.sign_checkpoint(&a.signer).unwrap();
    let r = verify(&b.bundle(), Some(&cp_a));
    assert_eq!(r.outcome, Outcome::Inconsistent);
    let detail = r.since_checkpoint.unwrap().detail;
    assert!(detail.contains("rollback or fork"), "{detail}");
}

#[test]
fn certificates_on_a_non_ca_rotation_are_refused() {
    let fx = Fx::new();
    let mut r = ledger_rotation(&fx.signer, &DalekSigner::from_seed([0x77; 32]));
    r.ca_certificate_der = vec![0x30, 0x00];
    let msg = r.signed_message(ORIGIN);
    r.old_signature = fx.signer.sign(&msg).unwrap().to_vec();
    r.new_signature = DalekSigner::from_seed([0x77; 32])
        .sign(&msg)
        .unwrap()
        .to_vec();
    let err = fx
        .ledger
        .append_batch(vec![credmint_ledger::NewEntry {
            timestamp_ms: fx.ts + 1000,
            actor: "operator:alice".into(),
            event: Event::KeyRotated(r),
        }])
        .unwrap_err();
    assert!(err.to_string().contains("only a CA rotation"), "{err}");
}

#[test]
fn only_rfc5280_crl_reasons_decode() {
    for reason in 0u8..=255 {
        let rec = Record {
            index: 1,
            timestamp_ms: 1,
            actor: "operator:alice".into(),
            prev_hash: ZERO_HASH,
            event: Event::Revoked(Revoked {
                serial: vec![1],
                reason,
            }),
        };
        let ok = Record::decode(&rec.encode()).is_ok();
        assert_eq!(ok, matches!(reason, 0..=6 | 8..=10), "reason {reason}");
    }
}

/// §12.1: a size-0 checkpoint would precede genesis, where no origin is known yet.
#[test]
fn a_size_zero_checkpoint_frame_is_misplaced() {
    let (b, key) = honest();
    let mut fr = frames(b);
    let empty = Checkpoint {
        origin: "bench.credmint.example/ledger".into(),
        size: 0,
        root: credmint_ledger::merkle::EMPTY_ROOT,
        extensions: vec![],
    };
    let signer = DalekSigner::from_seed([0x77; 32]);
    fr.insert(1, (3, empty.sign(&signer).unwrap().into_bytes()));
    fix_counts(&mut fr);
    let r = verify_with(&assemble(&fr), *key);
    assert_eq!(r.outcome, Outcome::Tampered, "{:?}", r.failure);
    assert_eq!(r.failure.unwrap().check, "checkpoint_size");
}
