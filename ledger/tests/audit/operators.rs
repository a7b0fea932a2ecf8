//! Operator minting under dual control (FORMAT.md §13.5): honest mints verify, and every
//! way to get a second operator without an independent approver is reported by the
//! `credmint-audit` binary (exit 1), whichever path minted the puppet.

use credmint_ledger::audit::Outcome;
use credmint_ledger::event::{
    ChangeKind, ChangeRequested, Event, IntegrationChanged, IntegrationSpec, OperatorApproved,
    OperatorRequested,
};
use credmint_ledger::note::verifier_key_string;
use credmint_ledger::Signer;
use sha2::{Digest, Sha256};

use crate::fixture::*;

fn spki(seed: u8) -> Vec<u8> {
    ca_info(seed).spki_der
}

fn op_request(name: &str, seed: u8) -> Event {
    Event::OperatorRequested(OperatorRequested::new(name, spki(seed), "CHG-op"))
}

fn op_approve(request_index: u64, name: &str, serial: u8, seed: u8) -> Event {
    Event::OperatorApproved(OperatorApproved {
        request_index,
        name: name.into(),
        serial: vec![0x0e, serial],
        not_after: T0_MS / 1000 + 86_400,
        key_fingerprint: Sha256::digest(spki(seed)).into(),
    })
}

fn wider() -> IntegrationSpec {
    let mut s = spec("billing");
    s.scopes.push("invoices:write".into());
    s
}

fn increase_request() -> Event {
    Event::ChangeRequested(ChangeRequested {
        proposed: wider(),
        reason: "needs write".into(),
    })
}

fn increase_approval(request_index: u64) -> Event {
    Event::IntegrationChanged(IntegrationChanged {
        kind: ChangeKind::IncreaseApproved,
        spec: wider(),
        reference: "CHG-w".into(),
        request_index,
    })
}

fn has(v: &[(u64, String)], index: u64, rule: &str) -> bool {
    v.iter().any(|(i, r)| *i == index && r == rule)
}

#[test]
fn an_honest_dual_control_mint_verifies() {
    let mut fx = Fx::new();
    let req = fx.push("operator:alice", op_request("carol", 2));
    fx.push("operator:bob", op_approve(req, "carol", 1, 2));
    // The new operator acts, renews her own certificate, and is approved by alice,
    // who neither requested nor approved her.
    let inc = fx.push("operator:carol", increase_request());
    fx.push("operator:alice", increase_approval(inc));
    fx.push("operator:carol", operator_cert("carol", 9));
    let (code, v) = audit_verify(&fx);
    assert_eq!((code, v), (0, vec![]));
    assert_eq!(fx.verify().stats.unwrap().operators, 3);
}

#[test]
fn the_bypass_ledger_is_flagged() {
    // alice mints "puppet" directly, then the puppet approves alice's increase.
    let mut fx = Fx::new();
    let mint = fx.push("operator:alice", operator_cert("puppet", 7));
    let inc = fx.push("operator:alice", increase_request());
    let appr = fx.push("operator:puppet", increase_approval(inc));
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1, "{v:?}");
    assert!(has(&v, mint, "operator_minted_without_approval"), "{v:?}");
    assert!(has(&v, appr, "approval_same_operator"), "{v:?}");
}

#[test]
fn a_puppet_minted_through_dual_control_cannot_approve_its_requester() {
    // alice requests a puppet with a key she holds; bob approves in good faith.
    let mut fx = Fx::new();
    let req = fx.push("operator:alice", op_request("puppet", 2));
    fx.push("operator:bob", op_approve(req, "puppet", 1, 2));
    // The puppet requests a second-level puppet; bob approves again.
    let req2 = fx.push("operator:puppet", op_request("puppet2", 3));
    fx.push("operator:bob", op_approve(req2, "puppet2", 2, 3));
    let inc = fx.push("operator:alice", increase_request());
    let appr = fx.push("operator:puppet2", increase_approval(inc));
    let req3 = fx.push("operator:alice", op_request("puppet3", 4));
    let appr3 = fx.push("operator:puppet", op_approve(req3, "puppet3", 3, 4));
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1, "{v:?}");
    // Transitive: puppet2 <- puppet <- alice.
    assert!(has(&v, appr, "approval_same_operator"), "{v:?}");
    assert!(has(&v, appr3, "operator_approval_invalid"), "{v:?}");
    assert_eq!(v.len(), 2, "{v:?}");
}

/// One invalid approval per reason FORMAT.md §13.5 lists; each must be reported with a
/// detail naming that reason (so one reason cannot hide behind another).
#[test]
fn every_invalid_operator_approval_is_reported() {
    type Case = (&'static str, fn(&mut Fx) -> u64);
    let cases: [Case; 7] = [
        ("is not an earlier operator_requested", |fx| {
            fx.push("operator:bob", op_approve(3, "carol", 1, 2))
        }),
        ("was approved before", |fx| {
            let r = fx.push("operator:alice", op_request("carol", 2));
            fx.push("operator:bob", op_approve(r, "carol", 1, 2));
            fx.push("operator:bob", op_approve(r, "dave", 2, 2))
        }),
        ("asked for", |fx| {
            let r = fx.push("operator:alice", op_request("carol", 2));
            fx.push("operator:bob", op_approve(r, "dave", 1, 2))
        }),
        ("key fingerprint differs", |fx| {
            let r = fx.push("operator:alice", op_request("carol", 2));
            fx.push("operator:bob", op_approve(r, "carol", 1, 3))
        }),
        ("already exists", |fx| {
            let r = fx.push("operator:alice", op_request("bob", 2));
            fx.push("operator:bob", op_approve(r, "bob", 1, 2))
        }),
        ("is not a known operator", |fx| {
            let r = fx.push("operator:alice", op_request("carol", 2));
            fx.push("operator:mallory", op_approve(r, "carol", 1, 2))
        }),
        ("cannot approve their own request", |fx| {
            let r = fx.push("operator:alice", op_request("carol", 2));
            fx.push("operator:alice", op_approve(r, "carol", 1, 2))
        }),
    ];
    for (reason, build) in cases {
        let mut fx = Fx::new();
        let at = build(&mut fx);
        let (code, v) = audit_verify(&fx);
        assert_eq!(code, 1, "{reason}: {v:?}");
        assert!(has(&v, at, "operator_approval_invalid"), "{reason}: {v:?}");
        let r = fx.verify();
        assert!(
            r.violations.iter().any(|x| x.index == at
                && x.rule == "operator_approval_invalid"
                && x.detail.contains(reason)),
            "{reason}: {:#?}",
            r.violations
        );
    }
}

#[test]
fn operator_certificates_outside_init_need_approval_except_self_renewal() {
    let mut fx = Fx::new();
    fx.push("operator:alice", operator_cert("alice", 8)); // self-renewal: legal
    let takeover = fx.push("operator:alice", operator_cert("bob", 9));
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1);
    assert_eq!(
        v,
        vec![(takeover, "operator_minted_without_approval".to_owned())]
    );

    // The init run may hold several operators, but only right after genesis.
    let mut late = Fx::new();
    let at = late.push("system:init", operator_cert("carol", 9));
    let (code, v) = audit_verify(&late);
    assert_eq!(code, 1);
    assert!(has(&v, at, "operator_minted_without_approval"), "{v:?}");
    assert!(has(&v, at, "actor_not_allowed"), "{v:?}");
}

#[test]
fn the_store_refuses_a_request_whose_fingerprint_is_not_its_key() {
    let fx = Fx::new();
    let mut bad = OperatorRequested::new("carol", spki(2), "CHG-op");
    bad.key_fingerprint[0] ^= 1;
    let r = fx.ledger.append_batch(vec![credmint_ledger::NewEntry {
        timestamp_ms: fx.ts + 1000,
        actor: "operator:alice".into(),
        event: Event::OperatorRequested(bad),
    }]);
    assert!(
        r.is_err(),
        "an OperatorRequested with a wrong fingerprint was appended"
    );
}

#[test]
fn query_shows_dual_control_operator_certificates_by_operator() {
    let dir = tempfile::tempdir().unwrap();
    let mut fx = Fx::new();
    let req = fx.push("operator:alice", op_request("carol", 2));
    fx.push("operator:bob", op_approve(req, "carol", 1, 2));
    assert_eq!(fx.verify().outcome, Outcome::Verified);
    let b = write(dir.path(), "q.bundle", &fx.bundle());
    let vkey = verifier_key_string(ORIGIN, &ledger_signer().public_key());
    let query = |op: &str| {
        let (code, out, err) = audit(&[
            "query",
            &b,
            "--ledger-key",
            &vkey,
            "--operator",
            op,
            "--json",
        ]);
        assert_eq!(code, 0, "{out}{err}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        j["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == "0e01")
            .cloned()
            .collect::<Vec<_>>()
    };
    for op in ["alice", "bob", "carol"] {
        let found = query(op);
        assert_eq!(found.len(), 1, "--operator {op}");
        assert_eq!(found[0]["kind"], "operator_certificate");
        assert_eq!(found[0]["subject"], "carol");
        assert_eq!(found[0]["actor"], "operator:bob");
        assert_eq!(found[0]["requested_by"], "alice");
        assert_eq!(found[0]["approval_ref"], "CHG-op");
    }
    assert!(query("erin").is_empty());
}
