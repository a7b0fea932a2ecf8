//! Property tests: merkle against a naive reference, decoder robustness, and
//! the store (proofs, verification, tamper detection) over random histories.

mod common;

use std::path::Path;

use credmint_ledger::event::{
    CaImported, KeyInfo, KeyRole, MonitorTokenCreated, MonitorTokenRevoked, OperatorApproved,
    OperatorRequested,
};
use credmint_ledger::merkle::{self, Frontier};
use credmint_ledger::note::Note;
use credmint_ledger::store::schema;
use credmint_ledger::{
    verify_file, verify_ledger, CertificateIssued, Checkpoint, Event, Hash, Ledger, NewEntry,
    Record, Revoked, Signer,
};
use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

// ---------------------------------------------------------------------------
// Naive RFC 9162 reference (tests only): the definitions, literally.

fn ref_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => merkle::EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = ref_split(n);
            merkle::node_hash(&ref_root(&leaves[..k]), &ref_root(&leaves[k..]))
        }
    }
}

fn ref_split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn ref_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = ref_split(n);
    if m < k {
        [ref_path(m, &leaves[..k]), vec![ref_root(&leaves[k..])]].concat()
    } else {
        [ref_path(m - k, &leaves[k..]), vec![ref_root(&leaves[..k])]].concat()
    }
}

fn ref_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole {
            vec![]
        } else {
            vec![ref_root(leaves)]
        };
    }
    let k = ref_split(n);
    if m <= k {
        [
            ref_subproof(m, &leaves[..k], whole),
            vec![ref_root(&leaves[k..])],
        ]
        .concat()
    } else {
        [
            ref_subproof(m - k, &leaves[k..], false),
            vec![ref_root(&leaves[..k])],
        ]
        .concat()
    }
}

fn leaves_strategy(max: usize) -> impl Strategy<Value = Vec<Hash>> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(|seeds| {
        seeds
            .iter()
            .enumerate()
            .map(|(i, s)| merkle::leaf_hash(&[*s, i as u8]))
            .collect()
    })
}

/// Every way we corrupt a valid proof: flip a bit, drop first/last, add a hash
/// at either end, replace an element.
fn corruptions(proof: &[Hash], bit: usize) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    if !proof.is_empty() {
        let i = bit % proof.len();
        let mut p = proof.to_vec();
        p[i][(bit / 8) % 32] ^= 1 << (bit % 8);
        out.push(p);
        out.push(proof[..proof.len() - 1].to_vec());
        out.push(proof[1..].to_vec());
    }
    out.push([proof, &[[0xAB; 32]]].concat());
    out.push([&[[0xAB; 32]][..], proof].concat());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merkle_matches_naive_reference(leaves in leaves_strategy(40), bit in any::<usize>()) {
        let n = leaves.len();
        let root = ref_root(&leaves);
        prop_assert_eq!(merkle::root_from_leaf_hashes(&leaves), root);
        let mut get = merkle::slice_lookup(&leaves);
        prop_assert_eq!(merkle::root_at(n as u64, &mut get), Ok(root));
        for m in 0..n {
            let proof = merkle::inclusion_proof(m as u64, n as u64, &mut get).expect("in range");
            prop_assert_eq!(&proof, &ref_path(m, &leaves));
            prop_assert!(merkle::verify_inclusion(m as u64, n as u64, &leaves[m], &proof, &root).is_ok());
            for bad in corruptions(&proof, bit) {
                prop_assert!(merkle::verify_inclusion(m as u64, n as u64, &leaves[m], &bad, &root).is_err());
            }
            // Wrong index or size with the right proof.
            if n > 1 {
                let other = (m + 1) % n;
                if leaves[other] != leaves[m] {
                    prop_assert!(merkle::verify_inclusion(other as u64, n as u64, &leaves[m], &proof, &root).is_err());
                }
            }
        }
        for m in 0..=n {
            let proof = merkle::consistency_proof(m as u64, n as u64, &mut get).expect("sizes ok");
            let expected = if m == 0 || m == n { vec![] } else { ref_subproof(m, &leaves, true) };
            prop_assert_eq!(&proof, &expected);
            let old = ref_root(&leaves[..m]);
            prop_assert!(merkle::verify_consistency(m as u64, n as u64, &old, &root, &proof).is_ok());
            if m > 0 && m < n {
                for bad in corruptions(&proof, bit) {
                    prop_assert!(merkle::verify_consistency(m as u64, n as u64, &old, &root, &bad).is_err());
                }
                prop_assert!(merkle::verify_consistency(m as u64, n as u64, &root, &old, &proof).is_err());
            }
        }
    }

    #[test]
    fn frontier_matches_reference_at_every_size(leaves in leaves_strategy(70)) {
        let mut f = Frontier::new();
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l, |_, _, _| {});
            prop_assert_eq!(f.root(), ref_root(&leaves[..=i]));
            prop_assert_eq!(f.hashes().len(), Frontier::positions(f.size()).len());
        }
    }
}

// ---------------------------------------------------------------------------
// Decoder robustness.

fn string_strategy(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::char::any(), 0..max).prop_map(|c| {
        let mut s: String = c.into_iter().collect();
        while s.len() > 255 {
            s.pop();
        }
        s
    })
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            prop::collection::vec(any::<u8>(), 0..24),
            string_strategy(20),
            string_strategy(40),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>()
        )
            .prop_map(
                |(serial, integration, subject, not_before, not_after, key_fingerprint)| {
                    Event::CertificateIssued(CertificateIssued {
                        serial,
                        integration,
                        subject,
                        not_before,
                        not_after,
                        key_fingerprint,
                    })
                }
            ),
        (
            prop::collection::vec(any::<u8>(), 0..24),
            prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 6, 8, 9, 10])
        )
            .prop_map(|(serial, reason)| Event::Revoked(Revoked { serial, reason })),
        Just(common::genesis_event(&[4u8; 32])),
        (
            string_strategy(20),
            prop::collection::vec(any::<u8>(), 0..200),
            string_strategy(40)
        )
            .prop_map(|(name, spki, approval_ref)| {
                Event::OperatorRequested(OperatorRequested::new(
                    non_empty(name),
                    spki,
                    non_empty(approval_ref),
                ))
            }),
        (
            any::<u64>(),
            string_strategy(20),
            prop::collection::vec(any::<u8>(), 0..24),
            any::<u64>(),
            any::<[u8; 32]>()
        )
            .prop_map(
                |(request_index, name, serial, not_after, key_fingerprint)| {
                    Event::OperatorApproved(OperatorApproved {
                        request_index,
                        name: non_empty(name),
                        serial,
                        not_after,
                        key_fingerprint,
                    })
                }
            ),
        (string_strategy(20), any::<[u8; 32]>(), any::<u64>()).prop_map(
            |(name, token_hash, expires_at)| {
                Event::MonitorTokenCreated(MonitorTokenCreated {
                    name: non_empty(name),
                    token_hash,
                    expires_at,
                })
            }
        ),
        (string_strategy(20), any::<[u8; 32]>()).prop_map(|(name, token_hash)| {
            Event::MonitorTokenRevoked(MonitorTokenRevoked {
                name: non_empty(name),
                token_hash,
            })
        }),
        (
            any::<[u8; 32]>(),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..100), 0..4)
        )
            .prop_map(|(raw, ca_certificate_der, issuer_chain_der)| {
                Event::CaImported(CaImported {
                    key: KeyInfo::ed25519(KeyRole::Ca, "ca", &raw),
                    ca_certificate_der,
                    issuer_chain_der,
                })
            }),
    ]
}

fn non_empty(s: String) -> String {
    if s.is_empty() {
        "x".into()
    } else {
        s
    }
}

fn record_strategy() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        any::<u64>(),
        string_strategy(12),
        any::<[u8; 32]>(),
        event_strategy(),
    )
        .prop_map(|(index, timestamp_ms, actor, prev_hash, event)| Record {
            index,
            timestamp_ms,
            actor: if actor.is_empty() { "a".into() } else { actor },
            prev_hash,
            event,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip_and_every_truncation_fails(r in record_strategy()) {
        let bytes = r.encode();
        prop_assert_eq!(Record::decode(&bytes), Ok(r.clone()));
        for len in 0..bytes.len() {
            prop_assert!(Record::decode(&bytes[..len]).is_err(), "truncation to {} decoded", len);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Record::decode(&longer).is_err());
    }

    #[test]
    fn single_byte_flips_never_decode_to_another_encoding(r in record_strategy(), pos in any::<usize>(), x in 1u8..) {
        let mut bytes = r.encode();
        let p = pos % bytes.len();
        bytes[p] ^= x;
        if let Ok(back) = Record::decode(&bytes) {
            // A flip inside a free-form field can decode; then it must be canonical
            // (so its hash differs and the chain catches it).
            prop_assert_eq!(back.encode(), bytes);
            prop_assert_ne!(back, r);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), s in ".{0,200}") {
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(r.encode(), bytes.clone());
        }
        let _ = Note::parse(&s);
        let _ = Note::parse(&String::from_utf8_lossy(&bytes));
        let _ = Checkpoint::parse_body(&s);
        let _ = credmint_ledger::note::NoteVerifier::parse(&s);
    }
}

// ---------------------------------------------------------------------------
// Store: proofs, verification and tamper detection over random histories.

/// Builds a ledger of `1 + sum(batches)` records, signing a checkpoint after
/// the batches flagged in `checkpoint_after` and always at the end.
fn build(path: &Path, batches: &[usize], checkpoint_after: &[bool]) -> Ledger {
    let signer = common::ledger_signer();
    let ledger = Ledger::create(path, common::genesis_entry()).expect("create");
    let mut next = 1u64;
    for (b, &n) in batches.iter().enumerate() {
        let entries: Vec<NewEntry> = (next..next + n as u64).map(common::entry).collect();
        next += n as u64;
        let recs = ledger.append_batch(entries).expect("append");
        assert_eq!(recs.len(), n);
        if checkpoint_after.get(b).copied().unwrap_or(false) {
            ledger.sign_checkpoint(&signer).expect("checkpoint");
        }
    }
    ledger.sign_checkpoint(&signer).expect("final checkpoint");
    ledger
}

fn history_strategy() -> impl Strategy<Value = (Vec<usize>, Vec<bool>)> {
    (
        prop::collection::vec(1usize..6, 1..7),
        prop::collection::vec(any::<bool>(), 7),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn store_proofs_verify_and_ledger_verifies((batches, cps) in history_strategy()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        let ledger = build(&path, &batches, &cps);
        let n = ledger.size();
        prop_assert_eq!(n, 1 + batches.iter().sum::<usize>() as u64);
        let roots: Vec<Hash> = (0..=n).map(|s| ledger.root_at(s).expect("root_at")).collect();
        prop_assert_eq!(roots[n as usize], ledger.root());
        for size in 1..=n {
            for i in 0..size {
                let leaf = ledger.record(i).expect("read").expect("exists").leaf_hash();
                let p = ledger.inclusion_proof(i, size).expect("proof");
                prop_assert!(merkle::verify_inclusion(i, size, &leaf, &p, &roots[size as usize]).is_ok());
            }
            for old in 0..=size {
                let p = ledger.consistency_proof(old, size).expect("proof");
                prop_assert!(merkle::verify_consistency(old, size, &roots[old as usize], &roots[size as usize], &p).is_ok());
            }
        }
        prop_assert!(ledger.inclusion_proof(0, n + 1).is_err());
        prop_assert!(ledger.consistency_proof(1, n + 1).is_err());
        let summary = verify_ledger(&ledger, &common::ledger_signer().public_key()).expect("verifies");
        prop_assert_eq!(summary.records, n);
        prop_assert_eq!(summary.root, ledger.root());
        prop_assert_eq!(summary.latest_checkpoint_size, Some(n));
        // Pinning another key fails at genesis.
        prop_assert!(verify_ledger(&ledger, &common::other_signer().public_key()).is_err());
        // Reopen rebuilds the same head.
        let (root, head) = (ledger.root(), ledger.head_hash());
        drop(ledger);
        let reopened = Ledger::open(&path).expect("open");
        prop_assert_eq!((reopened.size(), reopened.root(), reopened.head_hash()), (n, root, head));
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    FlipByte { record: usize, pos: usize, xor: u8 },
    Delete { record: usize },
    Swap { a: usize, b: usize },
    DuplicateOver { record: usize },
    DuplicateAtEnd { record: usize },
    RewriteNotResigned { record: usize },
    RewriteResignedOtherKey { record: usize },
    RewriteGenesisKeyAndResign,
    FlipNode { which: usize },
    FlipCheckpoint { which: usize, pos: usize },
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 1u8..).prop_map(|(record, pos, xor)| Tamper::FlipByte {
            record,
            pos,
            xor
        }),
        any::<usize>().prop_map(|record| Tamper::Delete { record }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap { a, b }),
        any::<usize>().prop_map(|record| Tamper::DuplicateOver { record }),
        any::<usize>().prop_map(|record| Tamper::DuplicateAtEnd { record }),
        any::<usize>().prop_map(|record| Tamper::RewriteNotResigned { record }),
        any::<usize>().prop_map(|record| Tamper::RewriteResignedOtherKey { record }),
        Just(Tamper::RewriteGenesisKeyAndResign),
        any::<usize>().prop_map(|which| Tamper::FlipNode { which }),
        (any::<usize>(), any::<usize>())
            .prop_map(|(which, pos)| Tamper::FlipCheckpoint { which, pos }),
    ]
}

fn all_records(db: &redb::Database) -> Vec<Vec<u8>> {
    let txn = db.begin_read().expect("read");
    let t = txn.open_table(schema::RECORDS).expect("table");
    t.iter()
        .expect("iter")
        .map(|r| r.expect("row").1.value().to_vec())
        .collect()
}

/// Rewrites history from `from` on with `modify`, re-chains every later
/// record, recomputes every tree node and, if `resign` is given, re-signs
/// every stored checkpoint with it — a forger with write access to the file.
fn rewrite(
    db: &redb::Database,
    from: usize,
    modify: impl FnOnce(&mut Record),
    resign: Option<&dyn Signer>,
) {
    let mut recs: Vec<Record> = all_records(db)
        .iter()
        .map(|b| Record::decode(b).expect("decodes"))
        .collect();
    modify(&mut recs[from]);
    for i in from + 1..recs.len() {
        recs[i].prev_hash = recs[i - 1].hash();
    }
    let txn = db.begin_write().expect("write");
    {
        let mut t = txn.open_table(schema::RECORDS).expect("records");
        let mut nodes = txn.open_table(schema::NODES).expect("nodes");
        nodes.retain(|_, _| false).expect("clear nodes");
        let mut f = Frontier::new();
        let mut roots = vec![f.root()];
        for r in &recs {
            let bytes = r.encode();
            t.insert(r.index, bytes.as_slice()).expect("insert");
            let mut new = Vec::new();
            f.push(merkle::leaf_hash(&bytes), |l, i, h| new.push(((l, i), *h)));
            for (k, h) in new {
                nodes.insert(k, h).expect("node");
            }
            roots.push(f.root());
        }
        if let Some(signer) = resign {
            let mut cps = txn.open_table(schema::CHECKPOINTS).expect("cps");
            let sizes: Vec<u64> = cps
                .iter()
                .expect("iter")
                .map(|r| r.expect("row").0.value())
                .collect();
            for size in sizes {
                let text = Checkpoint {
                    origin: common::ORIGIN.into(),
                    size,
                    root: roots[size as usize],
                    extensions: vec![],
                }
                .sign(signer)
                .expect("sign");
                cps.insert(size, text.as_str()).expect("insert");
            }
        }
    }
    txn.commit().expect("commit");
}

fn apply(path: &Path, tamper: &Tamper) {
    let db = redb::Database::open(path).expect("open raw");
    let recs = all_records(&db);
    let n = recs.len();
    let other = common::other_signer();
    match tamper {
        Tamper::FlipByte { record, pos, xor } => {
            let i = record % n;
            let mut b = recs[i].clone();
            let p = pos % b.len();
            b[p] ^= xor;
            put_record(&db, i as u64, &b);
        }
        Tamper::Delete { record } => {
            let txn = db.begin_write().expect("write");
            txn.open_table(schema::RECORDS)
                .expect("t")
                .remove((record % n) as u64)
                .expect("remove");
            txn.commit().expect("commit");
        }
        Tamper::Swap { a, b } => {
            let (i, mut j) = (a % n, b % n);
            if i == j {
                j = (i + 1) % n;
            }
            put_record(&db, i as u64, &recs[j]);
            put_record(&db, j as u64, &recs[i]);
        }
        Tamper::DuplicateOver { record } => {
            let i = record % (n - 1);
            put_record(&db, (i + 1) as u64, &recs[i]);
        }
        Tamper::DuplicateAtEnd { record } => put_record(&db, n as u64, &recs[record % n]),
        Tamper::RewriteNotResigned { record } => {
            let i = 1 + record % (n - 1);
            rewrite(&db, i, |r| r.actor.push('!'), None);
        }
        Tamper::RewriteResignedOtherKey { record } => {
            let i = 1 + record % (n - 1);
            rewrite(&db, i, |r| r.event = common::event(999), Some(&other));
        }
        Tamper::RewriteGenesisKeyAndResign => {
            let pk = other.public_key();
            rewrite(
                &db,
                0,
                |r| r.event = common::genesis_event(&pk),
                Some(&other),
            );
        }
        Tamper::FlipNode { which } => {
            let txn = db.begin_write().expect("write");
            {
                let mut t = txn.open_table(schema::NODES).expect("nodes");
                let keys: Vec<(u8, u64)> = t
                    .iter()
                    .expect("iter")
                    .map(|r| r.expect("row").0.value())
                    .collect();
                let k = keys[which % keys.len()];
                let mut h = t.get(k).expect("get").expect("exists").value();
                h[0] ^= 1;
                t.insert(k, h).expect("insert");
            }
            txn.commit().expect("commit");
        }
        Tamper::FlipCheckpoint { which, pos } => {
            let txn = db.begin_write().expect("write");
            {
                let mut t = txn.open_table(schema::CHECKPOINTS).expect("cps");
                let rows: Vec<(u64, String)> = t
                    .iter()
                    .expect("iter")
                    .map(|r| {
                        let (k, v) = r.expect("row");
                        (k.value(), v.value().to_owned())
                    })
                    .collect();
                let (size, text) = &rows[which % rows.len()];
                let mut bytes = text.clone().into_bytes();
                // Flip a character of the signed body (ASCII only, stays UTF-8).
                let body_len = text.find("\n\n").expect("note") + 1;
                let p = pos % body_len;
                bytes[p] = if bytes[p] == b'A' { b'B' } else { b'A' };
                let s = String::from_utf8(bytes).expect("ascii body");
                t.insert(*size, s.as_str()).expect("insert");
            }
            txn.commit().expect("commit");
        }
    }
}

fn put_record(db: &redb::Database, index: u64, bytes: &[u8]) {
    let txn = db.begin_write().expect("write");
    txn.open_table(schema::RECORDS)
        .expect("t")
        .insert(index, bytes)
        .expect("insert");
    txn.commit().expect("commit");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_tampering_fails_verification((batches, cps) in history_strategy(), tamper in tamper_strategy()) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.redb");
        let pinned = common::ledger_signer().public_key();
        drop(build(&path, &batches, &cps));
        prop_assert!(verify_file(&path, &pinned).is_ok());
        apply(&path, &tamper);
        let result = verify_file(&path, &pinned);
        prop_assert!(result.is_err(), "tamper {:?} went unnoticed", tamper);
        if let Err(e) = result {
            prop_assert!(e.is_tampered(), "{:?} reported as unreadable: {}", tamper, e);
        }
    }
}

#[test]
fn append_refuses_invalid_entries_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger =
        Ledger::create(&dir.path().join("l.redb"), common::genesis_entry()).expect("create");
    let (size, root) = (ledger.size(), ledger.root());
    let bad_batches: Vec<Vec<NewEntry>> = vec![
        vec![
            common::entry(1),
            NewEntry {
                actor: String::new(),
                ..common::entry(2)
            },
        ],
        vec![common::entry(1), common::genesis_entry()],
        vec![
            common::entry(1),
            NewEntry {
                timestamp_ms: 0,
                ..common::entry(2)
            },
        ],
        vec![NewEntry {
            actor: "x".repeat(256),
            ..common::entry(1)
        }],
    ];
    for batch in bad_batches {
        assert!(ledger.append_batch(batch).is_err());
        assert_eq!((ledger.size(), ledger.root()), (size, root));
    }
    // A failing projection aborts the whole batch.
    let r = ledger.append_batch_with(vec![common::entry(1)], |_, _| Err::<(), _>("no"));
    assert!(matches!(
        r,
        Err(credmint_ledger::AppendError::Project("no"))
    ));
    assert_eq!((ledger.size(), ledger.root()), (size, root));
    // A succeeding projection writes its table in the same transaction.
    const PROJ: redb::TableDefinition<u64, u64> = redb::TableDefinition::new("test_projection");
    let recs = ledger
        .append_batch_with(vec![common::entry(1), common::entry(2)], |txn, recs| {
            let mut t = txn.open_table(PROJ)?;
            for r in recs {
                t.insert(r.index, r.timestamp_ms)?;
            }
            Ok::<(), redb::Error>(())
        })
        .expect("append");
    assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![1, 2]);
    let txn = ledger.begin_read().expect("read");
    assert_eq!(txn.open_table(PROJ).expect("t").len().ok(), Some(2));
    assert!(Ledger::create(&dir.path().join("l.redb"), common::genesis_entry()).is_err());
    // Only the genesis ledger key may sign checkpoints.
    assert!(ledger.sign_checkpoint(&common::other_signer()).is_err());
    let a = ledger
        .sign_checkpoint(&common::ledger_signer())
        .expect("sign");
    let b = ledger
        .sign_checkpoint(&common::ledger_signer())
        .expect("sign again");
    assert_eq!(a, b, "re-signing the same size is idempotent");
    assert_eq!(ledger.latest_checkpoint().expect("read"), Some(a));
    assert_eq!(ledger.checkpoints().expect("iter").count(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The decoder, not only the semantic check, refuses an OperatorRequested whose
    /// fingerprint is not the SHA-256 of its key.
    #[test]
    fn operator_request_with_a_foreign_fingerprint_never_decodes(
        spki in prop::collection::vec(any::<u8>(), 0..100),
        flip in 0usize..32,
        x in 1u8..,
    ) {
        let mut ev = OperatorRequested::new("carol", spki, "CHG-1");
        let good = Record { index: 1, timestamp_ms: 1, actor: "operator:alice".into(), prev_hash: [0; 32], event: Event::OperatorRequested(ev.clone()) };
        prop_assert!(Record::decode(&good.encode()).is_ok());
        ev.key_fingerprint[flip] ^= x;
        let bad = Record { event: Event::OperatorRequested(ev), ..good };
        prop_assert!(Record::decode(&bad.encode()).is_err());
    }
}
