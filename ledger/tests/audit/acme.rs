//! ACME (FORMAT.md §13.7): an honest ACME life (EAB key, account, certificates, revocation
//! by the account and by certificate key, key rollover, deactivation) verifies; every
//! §13.7 rule and every ACME actor rule of §13.1 fires at the right index on records
//! appended through the ledger API.

use credmint_ledger::audit::Outcome;
use credmint_ledger::event::{
    account_id, AcmeAccountChange, AcmeAccountChanged, AcmeAccountCreated, AcmeEabCreated,
    ChangeKind, EnrollmentUsed, Event, IntegrationChanged, IntegrationRegistered,
    IntegrationStatus, Revoked, TokenRevoked,
};

use credmint_ledger::Signer as _;

use crate::fixture::*;

/// Record time of the first appended item is T0 + 4 s (the opening has four records).
const NOW: u64 = T0_MS / 1000 + 4;

/// RFC 7638 canonical JWK number `n` (an Ed25519 key; the bytes are what matters).
fn jwk(n: u8) -> Vec<u8> {
    format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"test-key-{n:03}"}}"#).into_bytes()
}

/// The account created with key `n`, and its actor.
fn account(n: u8) -> String {
    account_id(&jwk(n))
}

fn acme(n: u8) -> String {
    format!("acme:{}", account(n))
}

fn eab(kid: &str, integration: &str, expires_at: u64) -> Event {
    Event::AcmeEabCreated(AcmeEabCreated {
        integration: integration.into(),
        kid: kid.into(),
        expires_at,
    })
}

/// Account of key `n` created with EAB key `kid` for `integration`.
fn created(n: u8, kid: &str, integration: &str) -> Event {
    Event::AcmeAccountCreated(AcmeAccountCreated {
        account: account(n),
        integration: integration.into(),
        eab_kid: kid.into(),
        jwk: jwk(n),
    })
}

fn key_changed(n: u8, new_key: u8) -> Event {
    Event::AcmeAccountChanged(AcmeAccountChanged {
        account: account(n),
        change: AcmeAccountChange::KeyChanged { jwk: jwk(new_key) },
    })
}

fn deactivated(n: u8) -> Event {
    Event::AcmeAccountChanged(AcmeAccountChanged {
        account: account(n),
        change: AcmeAccountChange::Deactivated,
    })
}

fn revoke(serial: &[u8]) -> Event {
    Event::Revoked(Revoked {
        serial: serial.to_vec(),
        reason: 1,
    })
}

fn register(name: &str) -> Event {
    Event::IntegrationRegistered(IntegrationRegistered { spec: spec(name) })
}

/// Alice creates the EAB key `k1` for billing.
fn opening<'a>() -> Vec<(&'a str, Event)> {
    vec![("operator:alice", eab("k1", "billing", NOW + 600))]
}

/// `opening`, then the account of key 1 (actor `a1`) bound with `k1`.
fn with_account(a1: &str) -> Vec<(&str, Event)> {
    let mut items = opening();
    items.push((a1, created(1, "k1", "billing")));
    items
}

#[test]
fn an_honest_acme_life_verifies() {
    let (a1, a2) = (acme(1), acme(2));
    let key_holder = format!("acme-key:{}", hex::encode([0x20, 2]));
    let mut fx = Fx::new();
    for (actor, event) in [
        ("operator:alice", eab("k1", "billing", NOW + 600)),
        (a1.as_str(), created(1, "k1", "billing")),
        (a1.as_str(), cert(&[0x20, 1], "billing", NOW, 3600)),
        (a1.as_str(), revoke(&[0x20, 1])),
        (a1.as_str(), cert(&[0x20, 2], "billing", NOW, 3600)),
        (key_holder.as_str(), revoke(&[0x20, 2])),
        // Rollover: the id stays, the account goes on issuing under its new key.
        (a1.as_str(), key_changed(1, 3)),
        (a1.as_str(), cert(&[0x20, 3], "billing", NOW, 3600)),
        ("operator:bob", deactivated(1)),
        ("operator:alice", eab("k2", "billing", NOW + 600)),
        (a2.as_str(), created(2, "k2", "billing")),
        (a2.as_str(), deactivated(2)),
        // Operators and workloads still revoke certificates ACME obtained.
        ("operator:bob", revoke(&[0x20, 3])),
    ] {
        fx.push(actor, event);
    }
    let r = fx.verify();
    assert_eq!(r.outcome, Outcome::Verified, "{:#?}", r.violations);
    let s = r.stats.expect("stats");
    assert_eq!(
        (s.acme_eab_keys, s.acme_accounts, s.certificates),
        (2, 2, 5)
    );
    assert_eq!(r.event_counts.get("acme_account_changed"), Some(&3));
    assert_eq!(audit_verify(&fx), (0, vec![]));
}

#[test]
fn eab_keys_need_an_active_integration_and_a_fresh_kid() {
    assert_fires(
        vec![("operator:alice", eab("k1", "payroll", NOW + 600))],
        0,
        "acme_eab_integration",
    );
    let mut suspended = spec("billing");
    suspended.status = IntegrationStatus::Suspended;
    assert_fires(
        vec![
            (
                "system:anomaly",
                Event::IntegrationChanged(IntegrationChanged {
                    kind: ChangeKind::Suspended,
                    spec: suspended,
                    reference: "anomaly".into(),
                    request_index: 0,
                }),
            ),
            ("operator:alice", eab("k1", "billing", NOW + 600)),
        ],
        1,
        "acme_eab_integration",
    );
    // A kid is unique in the ledger, whatever the integration.
    assert_fires(
        vec![
            ("operator:alice", register("reports")),
            ("operator:alice", eab("k1", "billing", NOW + 600)),
            ("operator:bob", eab("k1", "reports", NOW + 600)),
        ],
        2,
        "acme_eab_duplicate",
    );
    assert_fires(
        vec![("workload:billing", eab("k1", "billing", NOW + 600))],
        0,
        "actor_not_allowed",
    );
    assert_fires(
        vec![("operator:mallory", eab("k1", "billing", NOW + 600))],
        0,
        "unknown_operator",
    );
}

#[test]
fn an_account_needs_an_unused_live_eab_key_of_its_integration() {
    let (a1, a2) = (acme(1), acme(2));
    assert_fires(
        vec![(a1.as_str(), created(1, "k1", "billing"))],
        0,
        "acme_eab_unknown",
    );
    assert_fires(
        vec![
            ("operator:alice", register("reports")),
            ("operator:alice", eab("k1", "reports", NOW + 600)),
            (a1.as_str(), created(1, "k1", "billing")),
        ],
        2,
        "acme_eab_unknown",
    );
    let mut items = with_account(&a1);
    items.push((a2.as_str(), created(2, "k1", "billing")));
    assert_fires(items, 2, "acme_eab_reused");
    // Expired at NOW + 1, used at NOW + 2 (time is timestamp_ms / 1000).
    assert_fires(
        vec![
            ("operator:alice", eab("k1", "billing", NOW + 1)),
            ("workload:billing", cert(&[1], "billing", NOW, 60)),
            (a1.as_str(), created(1, "k1", "billing")),
        ],
        2,
        "acme_eab_expired",
    );
    assert_clean(vec![
        ("operator:alice", eab("k1", "billing", NOW + 1)),
        (a1.as_str(), created(1, "k1", "billing")),
    ]);
}

#[test]
fn an_account_is_for_an_issuable_integration() {
    let a1 = acme(1);
    let mut suspended = spec("billing");
    suspended.status = IntegrationStatus::Suspended;
    let suspend = Event::IntegrationChanged(IntegrationChanged {
        kind: ChangeKind::Suspended,
        spec: suspended,
        reference: "anomaly".into(),
        request_index: 0,
    });
    let mut items = opening();
    items.push(("system:anomaly", suspend));
    items.push((a1.as_str(), created(1, "k1", "billing")));
    assert_fires(items, 2, "acme_account_integration");
    let mut overdue = spec("billing");
    overdue.review_by = NOW;
    let recertify = Event::IntegrationChanged(IntegrationChanged {
        kind: ChangeKind::Recertified,
        spec: overdue,
        reference: "late".into(),
        request_index: 0,
    });
    let mut items = opening();
    items.push(("operator:alice", recertify));
    items.push((a1.as_str(), created(1, "k1", "billing")));
    assert_fires(items, 2, "acme_account_integration");
}

#[test]
fn an_account_is_named_by_its_key_and_written_by_itself() {
    let a2 = acme(2);
    let mut wrong_id = created(1, "k1", "billing");
    if let Event::AcmeAccountCreated(a) = &mut wrong_id {
        a.account = account(2);
    }
    let mut items = opening();
    items.push((a2.as_str(), wrong_id));
    assert_fires(items, 1, "acme_account_key");
    let mut not_json = created(1, "k1", "billing");
    if let Event::AcmeAccountCreated(a) = &mut not_json {
        a.jwk = b"crv=Ed25519".to_vec();
        a.account = account_id(&a.jwk);
    }
    let actor = format!("acme:{}", account_id(b"crv=Ed25519"));
    let mut items = opening();
    items.push((actor.as_str(), not_json));
    assert_fires(items, 1, "acme_account_key");
    // Written by another account, or by an operator on its behalf.
    let mut items = opening();
    items.push((a2.as_str(), created(1, "k1", "billing")));
    assert_fires(items, 1, "actor_not_allowed");
    let mut items = opening();
    items.push(("operator:alice", created(1, "k1", "billing")));
    assert_fires(items, 1, "actor_not_allowed");
}

#[test]
fn accounts_and_keys_are_never_reused() {
    let (a1, a2) = (acme(1), acme(2));
    let mut items = with_account(&a1);
    items.push(("operator:alice", eab("k2", "billing", NOW + 600)));
    items.push((a1.as_str(), created(1, "k2", "billing")));
    assert_fires(items, 3, "acme_account_duplicate");
    // Account 1 rolls over to key 2; an account created with key 2 reuses it.
    let mut items = with_account(&a1);
    items.push((a1.as_str(), key_changed(1, 2)));
    items.push(("operator:alice", eab("k2", "billing", NOW + 600)));
    items.push((a2.as_str(), created(2, "k2", "billing")));
    assert_fires(items, 4, "acme_key_duplicate");
    // Rolling back to a former key, or over to another account's key.
    let mut items = with_account(&a1);
    items.push((a1.as_str(), key_changed(1, 2)));
    items.push((a1.as_str(), key_changed(1, 1)));
    assert_fires(items, 3, "acme_key_duplicate");
    let mut items = with_account(&a1);
    items.push(("operator:alice", eab("k2", "billing", NOW + 600)));
    items.push((a2.as_str(), created(2, "k2", "billing")));
    items.push((a1.as_str(), key_changed(1, 2)));
    assert_fires(items, 4, "acme_key_duplicate");
}

#[test]
fn changes_need_a_live_account_and_its_own_actor() {
    let (a1, a2) = (acme(1), acme(2));
    assert_fires(
        vec![("operator:alice", deactivated(1))],
        0,
        "acme_account_unknown",
    );
    assert_fires(
        vec![(a1.as_str(), key_changed(1, 2))],
        0,
        "acme_account_unknown",
    );
    for later in [deactivated(1), key_changed(1, 2)] {
        let mut items = with_account(&a1);
        items.push((a1.as_str(), deactivated(1)));
        items.push((a1.as_str(), later));
        assert_fires(items, 3, "acme_account_deactivated");
    }
    // Operators may deactivate, never change the key; other accounts may do neither.
    let mut items = with_account(&a1);
    items.push(("operator:alice", key_changed(1, 2)));
    assert_fires(items, 2, "actor_not_allowed");
    let mut items = with_account(&a1);
    items.push((a2.as_str(), deactivated(1)));
    assert_fires(items, 2, "actor_not_allowed");
    let mut items = with_account(&a1);
    items.push(("operator:mallory", deactivated(1)));
    assert_fires(items, 2, "unknown_operator");
    let mut items = with_account(&a1);
    items.push(("workload:billing", deactivated(1)));
    assert_fires(items, 2, "actor_not_allowed");
}

#[test]
fn accounts_obtain_and_revoke_certificates_of_their_own_integration_only() {
    let a1 = acme(1);
    let mut items = with_account(&a1);
    items.push(("operator:alice", register("reports")));
    items.push((a1.as_str(), cert(&[1], "reports", NOW, 60)));
    assert_fires(items, 3, "actor_integration");
    let mut items = with_account(&a1);
    items.push(("workload:billing", cert(&[1], "billing", NOW, 60)));
    items.push((a1.as_str(), revoke(&[1])));
    assert_clean(items);
    let mut items = with_account(&a1);
    items.push(("operator:alice", register("reports")));
    items.push(("workload:reports", cert(&[1], "reports", NOW, 60)));
    items.push((a1.as_str(), revoke(&[1])));
    assert_fires(items, 4, "actor_integration");
    // An operator certificate belongs to no integration.
    let mut items = with_account(&a1);
    items.push((a1.as_str(), revoke(&[0x0f, 1])));
    assert_fires(items, 2, "actor_integration");
    // Unknown and deactivated accounts do nothing.
    assert_fires(
        vec![(a1.as_str(), cert(&[1], "billing", NOW, 60))],
        0,
        "acme_account_unknown",
    );
    assert_fires(
        vec![
            ("workload:billing", cert(&[1], "billing", NOW, 60)),
            (a1.as_str(), revoke(&[1])),
        ],
        1,
        "acme_account_unknown",
    );
    let mut items = with_account(&a1);
    items.push(("operator:bob", deactivated(1)));
    items.push((a1.as_str(), cert(&[1], "billing", NOW, 60)));
    assert_fires(items, 3, "acme_account_deactivated");
    let mut items = with_account(&a1);
    items.push((a1.as_str(), cert(&[1], "billing", NOW, 60)));
    items.push((a1.as_str(), deactivated(1)));
    items.push((a1.as_str(), revoke(&[1])));
    assert_fires(items, 4, "acme_account_deactivated");
    // The §13.2 issuance rules apply to ACME issuance unchanged.
    let mut items = with_account(&a1);
    items.push((a1.as_str(), cert(&[1], "billing", NOW, 3631)));
    assert_fires(items, 2, "ttl_exceeded");
}

#[test]
fn the_holder_of_a_certificate_key_revokes_that_certificate_only() {
    let own = format!("acme-key:{}", hex::encode([0xab, 1]));
    assert_clean(vec![
        ("workload:billing", cert(&[0xab, 1], "billing", NOW, 60)),
        (own.as_str(), revoke(&[0xab, 1])),
    ]);
    for other in ["acme-key:ab02", "acme-key:AB01", "acme-key:0xab01"] {
        assert_fires(
            vec![
                ("workload:billing", cert(&[0xab, 1], "billing", NOW, 60)),
                ("workload:billing", cert(&[0xab, 2], "billing", NOW, 60)),
                (other, revoke(&[0xab, 1])),
            ],
            2,
            "actor_integration",
        );
    }
    assert_fires(
        vec![(own.as_str(), cert(&[0xab, 1], "billing", NOW, 60))],
        0,
        "actor_not_allowed",
    );
}

#[test]
fn acme_actors_issue_and_revoke_nothing_but_certificates() {
    let a1 = acme(1);
    let mut items = with_account(&a1);
    items.push((a1.as_str(), token("t", "billing", NOW, 60)));
    assert_fires(items, 2, "actor_not_allowed");
    let mut items = with_account(&a1);
    items.push(("workload:billing", token("t", "billing", NOW, 60)));
    items.push((
        a1.as_str(),
        Event::TokenRevoked(TokenRevoked {
            jti: "t".into(),
            reason: 1,
        }),
    ));
    assert_fires(items, 3, "actor_not_allowed");
    let mut items = with_account(&a1);
    items.push((
        a1.as_str(),
        Event::EnrollmentUsed(EnrollmentUsed {
            integration: "billing".into(),
            token_hash: [1; 32],
            serial: vec![1],
        }),
    ));
    assert_fires(items, 2, "actor_not_allowed");
    let mut items = with_account(&a1);
    items.push((a1.as_str(), register("reports")));
    assert_fires(items, 2, "actor_not_allowed");
    assert_fires(
        vec![("acme:", cert(&[1], "billing", NOW, 60))],
        0,
        "actor_format",
    );
}

#[test]
fn query_by_operator_follows_eab_keys_to_the_certificates_they_let_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a1 = acme(1);
    let mut fx = Fx::new();
    // Bob registered nothing; the EAB key he created is his only link to certificate 01.
    fx.push("operator:bob", eab("k1", "billing", NOW + 600));
    fx.push(&a1, created(1, "k1", "billing"));
    fx.push(&a1, cert(&[1], "billing", NOW, 3600));
    fx.push("workload:billing", cert(&[2], "billing", NOW, 3600));
    let b = write(dir.path(), "q.bundle", &fx.bundle());
    let key = hex::encode(ledger_signer().public_key());
    let (code, out, err) = audit(&[
        "query",
        &b,
        "--ledger-key",
        &key,
        "--operator",
        "bob",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let j: serde_json::Value = serde_json::from_str(&out).expect("json");
    let certs: Vec<_> = j["credentials"]
        .as_array()
        .expect("credentials")
        .iter()
        .filter(|c| c["kind"] == "certificate")
        .collect();
    assert_eq!(certs.len(), 1, "{out}");
    assert_eq!(certs[0]["id"], "01");
    assert_eq!(certs[0]["actor"], a1.as_str());
    assert_eq!(certs[0]["enrollment_creator"], "bob");
}
