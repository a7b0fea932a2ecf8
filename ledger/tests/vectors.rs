//! Known-answer tests against other implementations' published vectors:
//! RFC 6962 / transparency-dev/merkle trees and proofs, Go sumdb/note notes
//! and keys. Our own encoder agreeing with itself proves nothing to anyone else.

use credmint_ledger::checkpoint::{self, Checkpoint};
use credmint_ledger::merkle::{self, Frontier, EMPTY_ROOT};
use credmint_ledger::note::{self, Note, NoteVerifier};
use credmint_ledger::{DalekSigner, Hash, NoteError, ProofError, Signer};

fn h(s: &str) -> Hash {
    let v = hex::decode(s).expect("test vector hex");
    v.try_into().expect("32 bytes")
}

/// transparency-dev/merkle testonly.LeafInputs().
fn leaves() -> Vec<Vec<u8>> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| hex::decode(s).expect("hex"))
    .collect()
}

/// transparency-dev/merkle testonly.RootHashes(), by tree size 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// transparency-dev/merkle testonly.NodeHashes(): [level][index].
const NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

fn leaf_hashes() -> Vec<Hash> {
    leaves().iter().map(|l| merkle::leaf_hash(l)).collect()
}

#[test]
fn roots_match_rfc6962_reference_for_every_size() {
    assert_eq!(
        EMPTY_ROOT,
        h(ROOTS[0]),
        "empty root is SHA-256 of the empty string"
    );
    let lh = leaf_hashes();
    for n in 0..=8 {
        assert_eq!(
            merkle::root_from_leaf_hashes(&lh[..n]),
            h(ROOTS[n]),
            "size {n}"
        );
        let mut get = merkle::slice_lookup(&lh);
        assert_eq!(
            merkle::root_at(n as u64, &mut get),
            Ok(h(ROOTS[n])),
            "root_at {n}"
        );
    }
}

#[test]
fn frontier_emits_exactly_the_reference_node_hashes() {
    let mut emitted = Vec::new();
    let mut f = Frontier::new();
    for l in leaf_hashes() {
        f.push(l, |level, index, hash| emitted.push((level, index, *hash)));
    }
    let mut expected = Vec::new();
    for (level, row) in NODES.iter().enumerate() {
        for (index, hx) in row.iter().enumerate() {
            expected.push((level as u8, index as u64, h(hx)));
        }
    }
    emitted.sort();
    expected.sort();
    assert_eq!(emitted, expected);
    assert_eq!(f.root(), h(ROOTS[8]));
}

#[test]
fn split_point_is_largest_power_of_two_below_n() {
    for (n, k) in [
        (2u64, 1u64),
        (3, 2),
        (4, 2),
        (5, 4),
        (8, 4),
        (9, 8),
        (1000, 512),
        (1 << 40, 1 << 39),
    ] {
        assert_eq!(merkle::split_point(n), k, "n={n}");
    }
    assert_eq!(merkle::split_point((1 << 63) + 1), 1 << 63);
}

/// transparency-dev/merkle proof/verify_test.go inclusionProofs (leaf is 1-based there).
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

/// transparency-dev/merkle proof/verify_test.go consistencyProofs.
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

#[test]
fn inclusion_proofs_match_reference_and_corruptions_fail() {
    let lh = leaf_hashes();
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in inclusion_vectors() {
        let mut get = merkle::slice_lookup(&lh[..size as usize]);
        assert_eq!(
            merkle::inclusion_proof(index, size, &mut get).as_ref(),
            Ok(&proof)
        );
        let root = h(ROOTS[size as usize]);
        let leaf = lh[index as usize];
        merkle::verify_inclusion(index, size, &leaf, &proof, &root)
            .expect("reference proof verifies");
        // transparency-dev corruptInclusionProof probes.
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (index.wrapping_sub(1), size, root, leaf, proof.clone()),
            (index + 1, size, root, leaf, proof.clone()),
            (index ^ 2, size, root, leaf, proof.clone()),
            (index, size * 2, root, leaf, proof.clone()),
            (index, size / 2, root, leaf, proof.clone()),
            (index, size, root, some, proof.clone()),
            (index, size, EMPTY_ROOT, leaf, proof.clone()),
            (index, size, some, leaf, proof.clone()),
            (
                index,
                size,
                root,
                leaf,
                [proof.clone(), vec![root]].concat(),
            ),
            (
                index,
                size,
                root,
                leaf,
                [vec![root], proof.clone()].concat(),
            ),
            (
                index,
                size,
                root,
                leaf,
                [vec![[0u8; 32]], proof.clone()].concat(),
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 8;
            probes.push((index, size, root, leaf, p));
        }
        if !proof.is_empty() {
            probes.push((index, size, root, leaf, proof[..proof.len() - 1].to_vec()));
        }
        if proof.len() > 1 {
            probes.push((
                index,
                size,
                root,
                leaf,
                [vec![proof[0], some], proof[1..].to_vec()].concat(),
            ));
        }
        for (n, (i, s, r, l, p)) in probes.into_iter().enumerate() {
            assert!(
                merkle::verify_inclusion(i, s, &l, &p, &r).is_err(),
                "probe {n} for ({index},{size}) verified"
            );
        }
    }
}

#[test]
fn consistency_proofs_match_reference_and_corruptions_fail() {
    let lh = leaf_hashes();
    for (m, n, proof) in consistency_vectors() {
        let mut get = merkle::slice_lookup(&lh[..n as usize]);
        assert_eq!(
            merkle::consistency_proof(m, n, &mut get).as_ref(),
            Ok(&proof),
            "({m},{n})"
        );
        let (r1, r2) = (h(ROOTS[m as usize]), h(ROOTS[n as usize]));
        merkle::verify_consistency(m, n, &r1, &r2, &proof).expect("reference proof verifies");
        if proof.is_empty() {
            continue;
        }
        let mut probes: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            (m - 1, n, r1, r2, proof.clone()),
            (m + 1, n, r1, r2, proof.clone()),
            (m ^ 2, n, r1, r2, proof.clone()),
            (m, n * 2, r1, r2, proof.clone()),
            (m, n / 2, r1, r2, proof.clone()),
            (m, n, [1u8; 32], r2, proof.clone()),
            (m, n, r1, [1u8; 32], proof.clone()),
            (m, n, r2, r1, proof.clone()),
            (m, n, r1, r2, vec![]),
            (m, n, r1, r2, [proof.clone(), vec![[0u8; 32]]].concat()),
            (m, n, r1, r2, [proof.clone(), vec![r1]].concat()),
            (m, n, r1, r2, [proof.clone(), vec![r2]].concat()),
            (m, n, r1, r2, [vec![[0u8; 32]], proof.clone()].concat()),
            (m, n, r1, r2, [vec![r1], proof.clone()].concat()),
            (m, n, r1, r2, [vec![r2], proof.clone()].concat()),
            (m, n, r1, r2, [vec![proof[0]], proof.clone()].concat()),
            (m, n, r1, r2, proof[..proof.len() - 1].to_vec()),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 16;
            probes.push((m, n, r1, r2, p));
        }
        for (k, (a, b, x, y, p)) in probes.into_iter().enumerate() {
            assert!(
                merkle::verify_consistency(a, b, &x, &y, &p).is_err(),
                "probe {k} for ({m},{n}) verified"
            );
        }
    }
}

#[test]
fn consistency_edge_cases_follow_transparency_dev() {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    assert!(
        merkle::verify_consistency(0, 0, &a, &b, &[]).is_err(),
        "equal sizes need equal roots"
    );
    assert!(merkle::verify_consistency(0, 0, &a, &a, &[]).is_ok());
    assert!(merkle::verify_consistency(0, 1, &a, &b, &[]).is_ok());
    assert!(merkle::verify_consistency(1, 1, &b, &b, &[]).is_ok());
    assert!(matches!(
        merkle::verify_consistency(1, 1, &a, &b, &[]),
        Err(ProofError::RootMismatch { .. })
    ));
    assert!(merkle::verify_consistency(1, 0, &a, &b, &[]).is_err());
    assert!(merkle::verify_consistency(2, 1, &a, &b, &[]).is_err());
    assert!(matches!(
        merkle::verify_consistency(1, 2, &a, &b, &[]),
        Err(ProofError::TooShort)
    ));
    assert!(matches!(
        merkle::verify_consistency(0, 1, &EMPTY_ROOT, &EMPTY_ROOT, &[EMPTY_ROOT]),
        Err(ProofError::NotEmpty { .. })
    ));
    assert!(merkle::verify_consistency(1, 1, &EMPTY_ROOT, &EMPTY_ROOT, &[EMPTY_ROOT]).is_err());
    // Inclusion: index must be below size; a one-leaf tree needs an empty proof.
    assert!(merkle::verify_inclusion(0, 0, &a, &[], &a).is_err());
    assert!(merkle::verify_inclusion(1, 1, &a, &[], &a).is_err());
    assert!(merkle::verify_inclusion(0, 1, &a, &[], &a).is_ok());
    assert!(matches!(
        merkle::verify_inclusion(0, 1, &a, &[a], &a),
        Err(ProofError::TooLong { extra: 1 })
    ));
    match merkle::verify_inclusion(0, 1, &a, &[], &b) {
        Err(ProofError::RootMismatch { expected, found }) => assert_eq!((expected, found), (b, a)),
        other => panic!("expected RootMismatch carrying both roots, got {other:?}"),
    }
}

// ---- Go golang.org/x/mod/sumdb/note vectors ----

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str =
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
const ENOCH_SIG: &str =
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=";

fn peter_note() -> String {
    format!("{TEXT}\n\u{2014} PeterNeumann {PETER_SIG}\n")
}

#[test]
fn go_note_vector_verifies_and_key_parses() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("Go verifier key parses");
    assert_eq!(v.name, "PeterNeumann");
    assert_eq!(v.key_id, 0xc74f20a3);
    assert_eq!(note::key_id("PeterNeumann", &v.public_key), 0xc74f20a3);
    assert_eq!(
        v.to_key_string(),
        PETER_VKEY,
        "key string round-trips byte for byte"
    );
    let n = Note::parse(&peter_note()).expect("parses");
    assert_eq!(n.text, TEXT);
    assert_eq!(n.format(), peter_note());
    let ok = n
        .verify(std::slice::from_ref(&v))
        .expect("Go signed note verifies");
    assert_eq!(ok.len(), 1);
}

#[test]
fn go_signer_key_reproduces_the_signature_byte_for_byte() {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(PETER_SKEY_B64)
        .expect("b64");
    assert_eq!(raw[0], 1);
    let seed: [u8; 32] = raw[1..].try_into().expect("32-byte seed");
    let signer = DalekSigner::from_seed(seed);
    let v = NoteVerifier::parse(PETER_VKEY).expect("parses");
    assert_eq!(signer.public_key(), v.public_key);
    assert_eq!(
        note::sign_note(TEXT, "PeterNeumann", &signer).expect("signs"),
        peter_note()
    );
}

#[test]
fn doubly_signed_go_note_verifies_with_either_key_and_ignores_unknown() {
    let msg = format!("{}\u{2014} EnochRoot {ENOCH_SIG}\n", peter_note());
    let peter = NoteVerifier::parse(PETER_VKEY).expect("peter");
    let enoch = NoteVerifier::parse(ENOCH_VKEY).expect("enoch");
    let n = Note::parse(&msg).expect("parses");
    assert_eq!(n.signatures.len(), 2);
    assert_eq!(
        n.verify(std::slice::from_ref(&peter)).map(|v| v.len()),
        Ok(1)
    );
    assert_eq!(
        n.verify(std::slice::from_ref(&enoch)).map(|v| v.len()),
        Ok(1)
    );
    assert_eq!(n.verify(&[peter, enoch]).map(|v| v.len()), Ok(2));
    let stranger = NoteVerifier::new("Stranger", [3u8; 32]).expect("name ok");
    assert_eq!(n.verify(&[stranger]), Err(NoteError::NoKnownSignature));
}

/// C2SP signed-note forbids every control character but newline, anywhere in the note, and
/// in key names: DEL (U+007F) and C1 (U+0080..U+009F) too, not only C0.
#[test]
fn del_and_c1_controls_are_rejected_in_signature_lines_and_key_names() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("parses");
    let good = peter_note();
    assert!(Note::parse(&good).is_ok());
    for ctl in ['\u{7f}', '\u{80}', '\u{85}', '\u{9f}'] {
        let unknown_line = format!("{good}\u{2014} Wit{ctl}ness AAAAAAAAAAAA\n");
        assert!(
            Note::parse(&unknown_line).is_err(),
            "{ctl:?} in an unknown signature line accepted"
        );
        let in_text = good.replace("don't", &format!("don{ctl}t"));
        assert!(
            Note::parse(&in_text).is_err(),
            "{ctl:?} in the text accepted"
        );
        let name = format!("Peter{ctl}Neumann");
        assert!(
            !credmint_ledger::event::is_valid_key_name(&name),
            "{ctl:?} in a key name accepted"
        );
        assert!(NoteVerifier::new(&name, v.public_key).is_err());
    }
    // Printable non-ASCII stays legal (C2SP names are UTF-8).
    assert!(credmint_ledger::event::is_valid_key_name("Pétér"));
}

/// §7: at most 100 signature lines; a 101st makes the whole note malformed (dropping lines
/// silently could drop the ledger's own signature).
#[test]
fn a_101st_signature_line_rejects_the_note() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("parses");
    let good = peter_note();
    let witness = "\u{2014} Witness AAAAAAAAAAAA\n";
    let with = |n: usize| format!("{good}{}", witness.repeat(n));
    let ok = Note::parse(&with(99)).expect("100 signature lines parse");
    assert_eq!(ok.signatures.len(), 100);
    assert!(ok.verify(std::slice::from_ref(&v)).is_ok());
    assert!(Note::parse(&with(100)).is_err());
}

#[test]
fn malformed_notes_and_keys_are_rejected() {
    let v = NoteVerifier::parse(PETER_VKEY).expect("parses");
    let good = peter_note();
    let bad_notes = [
        good.replace('\u{2014}', "-"),                         // ASCII dash
        good.replace("\n\n", "\n"),                            // no blank line
        good.trim_end_matches('\n').to_owned(),                // no final newline
        good.replace("PeterNeumann x08", "PeterNeumann  x08"), // bad base64 (leading space)
        good.replace("don't", "don\rt"),                       // control character
        format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n"),       // signature too short
        good.replace("problem is", "problem was"),             // text changed: bad sig by known key
    ];
    for (i, m) in bad_notes.iter().enumerate() {
        let r = Note::parse(m).and_then(|n| n.verify(std::slice::from_ref(&v)).map(|_| ()));
        assert!(r.is_err(), "bad note {i} accepted");
    }
    let bad_keys = [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+!!!!",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ];
    for k in bad_keys {
        assert!(NoteVerifier::parse(k).is_err(), "bad key accepted: {k}");
    }
    assert!(matches!(
        NoteVerifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::KeyIdMismatch {
            expected: 0xc74f20a3,
            found: 0xc74f20a4
        })
    ));
}

// ---- C2SP tlog-checkpoint ----

#[test]
fn checkpoint_body_is_strict_and_round_trips() {
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 8,
        root: h(ROOTS[8]),
        extensions: vec!["ext line".into()],
    };
    let body = cp.to_body();
    assert_eq!(
        body,
        "example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next line\n"
    );
    assert_eq!(Checkpoint::parse_body(&body), Ok(cp));
    let empty = Checkpoint {
        origin: "o".into(),
        size: 0,
        root: EMPTY_ROOT,
        extensions: vec![],
    };
    assert_eq!(
        empty.to_body(),
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    for bad in [
        "o\n08\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // leading zero
        "o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // sign
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n",   // unpadded
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n",  // non-canonical trailing bits
        "o\n1\nAAAA\n",                                          // not 32 bytes
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",    // no final newline
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", // empty extension line
        "\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",   // empty origin
        "o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", // > u64
    ] {
        assert!(Checkpoint::parse_body(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn signed_checkpoint_opens_only_with_the_right_key_and_origin() {
    let signer = DalekSigner::from_seed([5u8; 32]);
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 3,
        root: h(ROOTS[3]),
        extensions: vec![],
    };
    let text = cp.sign(&signer).expect("signs");
    assert!(text.starts_with("example.com/log\n3\n"));
    assert!(text.contains("\n\n\u{2014} example.com/log "));
    assert_eq!(
        checkpoint::open(&text, "example.com/log", &signer.public_key()),
        Ok(cp.clone())
    );
    let other = DalekSigner::from_seed([6u8; 32]);
    assert_eq!(
        checkpoint::open(&text, "example.com/log", &other.public_key()),
        Err(NoteError::NoKnownSignature)
    );
    assert!(checkpoint::open(&text, "example.com/other", &signer.public_key()).is_err());
    // A witness cosignature by an unknown key is ignored.
    let witness = note::sign(&cp.to_body(), "witness.example", &other).expect("signs");
    let cosigned = format!("{text}{}", witness.to_line());
    assert_eq!(
        checkpoint::open(&cosigned, "example.com/log", &signer.public_key()),
        Ok(cp)
    );
}
