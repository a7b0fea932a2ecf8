//! Semantic rules: a realistic history passes, and each rule fires, at the
//! right index, on an event that is correctly hashed and signed (appended
//! through the ledger API) but means something the appliance must never do.

use credmint_ledger::audit::Outcome;
use credmint_ledger::event::{
    ChangeKind, ChangeRequested, EnrollmentCreated, EnrollmentUsed, Event, IntegrationChanged,
    IntegrationRegistered, IntegrationSpec, IntegrationStatus, PrivilegeClass, Revoked,
    TokenRevoked,
};

use crate::fixture::*;

fn change(kind: ChangeKind, spec: IntegrationSpec, request_index: u64) -> Event {
    Event::IntegrationChanged(IntegrationChanged {
        kind,
        spec,
        reference: "ticket".into(),
        request_index,
    })
}

fn request(spec: IntegrationSpec) -> Event {
    Event::ChangeRequested(ChangeRequested {
        proposed: spec,
        reason: "needs more".into(),
    })
}

fn enrollment(hash: u8, expires_at: u64) -> Event {
    Event::EnrollmentCreated(EnrollmentCreated {
        integration: "billing".into(),
        token_hash: [hash; 32],
        expires_at,
    })
}

fn used(hash: u8, serial: &[u8], integration: &str) -> Event {
    Event::EnrollmentUsed(EnrollmentUsed {
        integration: integration.into(),
        token_hash: [hash; 32],
        serial: serial.to_vec(),
    })
}

fn with<F: FnOnce(&mut IntegrationSpec)>(f: F) -> IntegrationSpec {
    let mut s = spec("billing");
    f(&mut s);
    s
}

/// Issue, enroll, renew, token, revoke, suspend/resume, approved increase,
/// recertify, decommission: everything the appliance does, all valid.
fn honest_history() -> Fx {
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push("operator:alice", enrollment(0xa1, now + 600));
    fx.batch(vec![
        (
            "enrollment:billing",
            cert(&[0x10, 1], "billing", now + 1, 3600),
        ),
        ("enrollment:billing", used(0xa1, &[0x10, 1], "billing")),
    ]);
    fx.push(
        "workload:billing",
        cert(&[0x10, 2], "billing", now + 2, 3600),
    );
    fx.push("workload:billing", token("jti-1", "billing", now + 3, 600));
    fx.push(
        "workload:billing",
        Event::Revoked(Revoked {
            serial: vec![0x10, 1],
            reason: 4,
        }),
    );
    fx.push(
        "operator:bob",
        Event::TokenRevoked(TokenRevoked {
            jti: "jti-1".into(),
            reason: 1,
        }),
    );
    let suspended = with(|s| s.status = IntegrationStatus::Suspended);
    fx.push(
        "system:anomaly",
        change(ChangeKind::Suspended, suspended, 0),
    );
    fx.push(
        "operator:bob",
        change(ChangeKind::Resumed, spec("billing"), 0),
    );
    let wider = with(|s| {
        s.scopes.push("invoices:write".into());
        s.max_ttl_secs = 7200;
    });
    let req = fx.push("operator:alice", request(wider.clone()));
    fx.push(
        "operator:bob",
        change(ChangeKind::IncreaseApproved, wider.clone(), req),
    );
    let now = fx.now_s();
    fx.push("workload:billing", cert(&[0x10, 3], "billing", now, 7200));
    let mut narrower = wider.clone();
    narrower.scopes.pop();
    fx.push(
        "operator:alice",
        change(ChangeKind::Narrowed, narrower.clone(), 0),
    );
    let mut recert = narrower.clone();
    // The furthest a routine recertification may go: 365 days after its own time.
    recert.review_by = fx.now_s() + 1 + 365 * 86_400;
    fx.push(
        "operator:alice",
        change(ChangeKind::Recertified, recert.clone(), 0),
    );
    let mut gone = recert;
    gone.status = IntegrationStatus::Decommissioned;
    fx.batch(vec![
        (
            "operator:alice",
            Event::Revoked(Revoked {
                serial: vec![0x10, 2],
                reason: 5,
            }),
        ),
        (
            "operator:alice",
            Event::Revoked(Revoked {
                serial: vec![0x10, 3],
                reason: 5,
            }),
        ),
        (
            "operator:alice",
            change(ChangeKind::Decommissioned, gone, 0),
        ),
    ]);
    fx.push(
        "operator:alice",
        Event::IntegrationRegistered(IntegrationRegistered {
            spec: spec("reports"),
        }),
    );
    fx
}

#[test]
fn a_realistic_history_has_no_violations() {
    let fx = honest_history();
    let r = fx.verify();
    assert_eq!(r.outcome, Outcome::Verified, "{:#?}", r.violations);
    let s = r.stats.unwrap();
    assert_eq!(
        (s.integrations, s.integrations_decommissioned, s.operators),
        (2, 1, 2)
    );
    assert_eq!((s.certificates, s.tokens), (5, 1));
}

const NOW: u64 = T0_MS / 1000 + 4;

#[test]
fn duplicate_serials_and_jtis() {
    assert_fires(
        vec![
            ("workload:billing", cert(&[1], "billing", NOW, 60)),
            ("workload:billing", cert(&[1], "billing", NOW, 60)),
        ],
        1,
        "serial_duplicate",
    );
    // Operator certificates share the serial space.
    assert_fires(
        vec![("workload:billing", cert(&[0x0f, 1], "billing", NOW, 60))],
        0,
        "serial_duplicate",
    );
    assert_fires(
        vec![
            ("workload:billing", token("j", "billing", NOW, 60)),
            ("workload:billing", token("j", "billing", NOW, 60)),
        ],
        1,
        "jti_duplicate",
    );
}

#[test]
fn revocations_must_name_an_issued_credential_once() {
    let rev = |s: &[u8]| {
        Event::Revoked(Revoked {
            serial: s.to_vec(),
            reason: 1,
        })
    };
    assert_fires(vec![("operator:bob", rev(&[9, 9]))], 0, "revoke_unknown");
    assert_fires(
        vec![
            ("workload:billing", cert(&[2], "billing", NOW, 60)),
            ("operator:bob", rev(&[2])),
            ("operator:bob", rev(&[2])),
        ],
        2,
        "revoke_twice",
    );
    // Revoked as superseded, then once with another reason (the key turned out to be
    // compromised): allowed; a third revocation, or superseded twice, is not.
    let rev_as = |s: &[u8], reason: u8| {
        Event::Revoked(Revoked {
            serial: s.to_vec(),
            reason,
        })
    };
    assert_clean(vec![
        ("workload:billing", cert(&[3], "billing", NOW, 60)),
        ("operator:bob", rev_as(&[3], 4)),
        ("operator:bob", rev_as(&[3], 1)),
    ]);
    assert_fires(
        vec![
            ("workload:billing", cert(&[4], "billing", NOW, 60)),
            ("operator:bob", rev_as(&[4], 4)),
            ("operator:bob", rev_as(&[4], 1)),
            ("operator:bob", rev_as(&[4], 1)),
        ],
        3,
        "revoke_twice",
    );
    assert_fires(
        vec![
            ("workload:billing", cert(&[5], "billing", NOW, 60)),
            ("operator:bob", rev_as(&[5], 4)),
            ("operator:bob", rev_as(&[5], 4)),
        ],
        2,
        "revoke_twice",
    );
    assert_fires(
        vec![
            ("workload:billing", cert(&[6], "billing", NOW, 60)),
            ("operator:bob", rev_as(&[6], 1)),
            ("operator:bob", rev_as(&[6], 4)),
        ],
        2,
        "revoke_twice",
    );
    let trev = || {
        Event::TokenRevoked(TokenRevoked {
            jti: "t".into(),
            reason: 1,
        })
    };
    assert_fires(vec![("operator:bob", trev())], 0, "token_revoke_unknown");
    assert_fires(
        vec![
            ("workload:billing", token("t", "billing", NOW, 60)),
            ("operator:bob", trev()),
            ("operator:bob", trev()),
        ],
        2,
        "token_revoke_twice",
    );
}

#[test]
fn issuance_needs_a_registered_active_reviewed_integration_and_ttl_within_limit() {
    assert_fires(
        vec![("workload:payroll", cert(&[3], "payroll", NOW, 60))],
        0,
        "issue_unregistered",
    );
    let suspended = with(|s| s.status = IntegrationStatus::Suspended);
    assert_fires(
        vec![
            (
                "operator:alice",
                change(ChangeKind::Suspended, suspended, 0),
            ),
            ("workload:billing", cert(&[3], "billing", NOW, 60)),
        ],
        1,
        "issue_not_active",
    );
    let gone = with(|s| s.status = IntegrationStatus::Decommissioned);
    assert_fires(
        vec![
            (
                "operator:alice",
                change(ChangeKind::Decommissioned, gone, 0),
            ),
            ("workload:billing", token("x", "billing", NOW, 60)),
        ],
        1,
        "issue_not_active",
    );
    let overdue = with(|s| s.review_by = T0_MS / 1000);
    assert_fires(
        vec![
            (
                "operator:alice",
                change(ChangeKind::Recertified, overdue, 0),
            ),
            ("workload:billing", cert(&[3], "billing", NOW, 60)),
        ],
        1,
        "issue_review_overdue",
    );
    // 3600 s allowed, plus 30 s backdating for certificates; tokens get no slack.
    assert_fires(
        vec![("workload:billing", cert(&[3], "billing", NOW, 3631))],
        0,
        "ttl_exceeded",
    );
    assert_fires(
        vec![("workload:billing", token("y", "billing", NOW, 3601))],
        0,
        "ttl_exceeded",
    );
    let mut t = token("z", "billing", NOW, 60);
    if let Event::TokenIssued(t) = &mut t {
        t.scopes = vec!["admin".into()];
    }
    assert_fires(vec![("workload:billing", t)], 0, "token_scope");
}

#[test]
fn integration_lifecycle_rules() {
    assert_fires(
        vec![(
            "operator:alice",
            Event::IntegrationRegistered(IntegrationRegistered {
                spec: spec("billing"),
            }),
        )],
        0,
        "integration_name_reused",
    );
    assert_fires(
        vec![(
            "operator:alice",
            change(ChangeKind::Narrowed, spec("payroll"), 0),
        )],
        0,
        "change_unregistered",
    );
    let gone = with(|s| s.status = IntegrationStatus::Decommissioned);
    assert_fires(
        vec![
            (
                "operator:alice",
                change(ChangeKind::Decommissioned, gone.clone(), 0),
            ),
            ("operator:alice", change(ChangeKind::Recertified, gone, 0)),
        ],
        1,
        "change_decommissioned",
    );
    for (what, wider) in [
        ("scope", with(|s| s.scopes.push("invoices:delete".into()))),
        ("ttl", with(|s| s.max_ttl_secs += 1)),
        (
            "class",
            with(|s| s.privilege_class = PrivilegeClass::Privileged),
        ),
        ("server auth", with(|s| s.allow_server_auth = true)),
        ("dns", with(|s| s.dns_names.push("billing.example".into()))),
    ] {
        for kind in [
            ChangeKind::Narrowed,
            ChangeKind::Recertified,
            ChangeKind::OwnerChanged,
        ] {
            eprintln!("increase by {what} via {kind:?}");
            assert_fires(
                vec![("operator:alice", change(kind, wider.clone(), 0))],
                0,
                "authority_increase_unapproved",
            );
        }
    }
    assert_fires(
        vec![(
            "operator:alice",
            change(ChangeKind::Resumed, spec("billing"), 0),
        )],
        0,
        "status_transition",
    );
}

#[test]
fn increases_need_a_matching_request_approved_once_by_another_operator() {
    let wider = with(|s| s.scopes.push("invoices:write".into()));
    assert_fires(
        vec![(
            "operator:bob",
            change(ChangeKind::IncreaseApproved, wider.clone(), 2),
        )],
        0,
        "approval_no_request",
    );
    let mut fx = Fx::new();
    let req = fx.push("operator:alice", request(wider.clone()));
    let other = with(|s| s.scopes.push("invoices:delete".into()));
    let a = fx.push(
        "operator:bob",
        change(ChangeKind::IncreaseApproved, other, req),
    );
    let b = fx.push(
        "operator:alice",
        change(ChangeKind::IncreaseApproved, wider.clone(), req),
    );
    let r = fx.verify();
    let fired = |rule: &str, index: u64| {
        r.violations
            .iter()
            .any(|v| v.rule == rule && v.index == index)
    };
    assert!(fired("approval_mismatch", a), "{:#?}", r.violations);
    assert!(fired("approval_same_operator", b), "{:#?}", r.violations);
    assert!(fired("approval_reused", b), "{:#?}", r.violations);
}

#[test]
fn enrollment_tokens_are_single_use_unexpired_and_adjacent_to_their_certificate() {
    assert_fires(
        vec![
            ("enrollment:billing", cert(&[4], "billing", NOW, 60)),
            ("enrollment:billing", used(0xb1, &[4], "billing")),
        ],
        1,
        "enrollment_unknown",
    );
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push("operator:alice", enrollment(0xb2, now + 2));
    let first = fx.batch(vec![
        ("enrollment:billing", cert(&[5], "billing", now, 60)),
        ("enrollment:billing", used(0xb2, &[5], "billing")),
    ]);
    let again = fx.batch(vec![
        ("enrollment:billing", cert(&[6], "billing", now, 60)),
        ("enrollment:billing", used(0xb2, &[6], "billing")),
    ]);
    fx.push("operator:alice", enrollment(0xb3, now));
    let late = fx.batch(vec![
        ("enrollment:billing", cert(&[7], "billing", now, 60)),
        ("enrollment:billing", used(0xb3, &[7], "billing")),
    ]);
    fx.push("operator:alice", enrollment(0xb4, now + 3600));
    let apart = fx.push("enrollment:billing", cert(&[8], "billing", now, 60));
    fx.push("workload:billing", token("between", "billing", now, 60));
    let lonely = fx.push("enrollment:billing", used(0xb4, &[8], "billing"));
    let r = fx.verify();
    let fired = |rule: &str, index: u64| {
        r.violations
            .iter()
            .any(|v| v.rule == rule && v.index == index)
    };
    assert!(
        !r.violations
            .iter()
            .any(|v| v.index == first || v.index == first + 1),
        "{:#?}",
        r.violations
    );
    assert!(fired("enrollment_reused", again + 1), "{:#?}", r.violations);
    assert!(fired("enrollment_expired", late + 1), "{:#?}", r.violations);
    assert!(
        fired("enrollment_cert_without_use", apart),
        "{:#?}",
        r.violations
    );
    assert!(
        fired("enrollment_not_adjacent", lonely),
        "{:#?}",
        r.violations
    );
    assert_fires(
        vec![(
            "operator:alice",
            Event::EnrollmentCreated(EnrollmentCreated {
                integration: "payroll".into(),
                token_hash: [1; 32],
                expires_at: NOW + 60,
            }),
        )],
        0,
        "enrollment_integration",
    );
}

#[test]
fn actors_must_be_known_and_act_only_for_themselves() {
    assert_fires(
        vec![(
            "operator:mallory",
            Event::IntegrationRegistered(IntegrationRegistered {
                spec: spec("payroll"),
            }),
        )],
        0,
        "unknown_operator",
    );
    assert_fires(
        vec![(
            "workload:billing",
            Event::IntegrationRegistered(IntegrationRegistered {
                spec: spec("payroll"),
            }),
        )],
        0,
        "actor_not_allowed",
    );
    assert_fires(
        vec![("admin", cert(&[9], "billing", NOW, 60))],
        0,
        "actor_format",
    );
    assert_fires(
        vec![
            (
                "operator:alice",
                Event::IntegrationRegistered(IntegrationRegistered {
                    spec: spec("payroll"),
                }),
            ),
            ("workload:payroll", cert(&[10], "billing", NOW, 60)),
        ],
        1,
        "actor_integration",
    );
    assert_fires(
        vec![
            (
                "operator:alice",
                Event::IntegrationRegistered(IntegrationRegistered {
                    spec: spec("payroll"),
                }),
            ),
            ("workload:billing", cert(&[11], "billing", NOW, 60)),
            (
                "workload:payroll",
                Event::Revoked(Revoked {
                    serial: vec![11],
                    reason: 1,
                }),
            ),
        ],
        2,
        "actor_integration",
    );
    assert_fires(
        vec![
            ("operator:alice", operator_cert("carol", 3)),
            ("operator:dave", request(spec("billing"))),
        ],
        1,
        "unknown_operator",
    );
    // Only index 1 may be an operator certificate issued by system:init.
    assert_fires(
        vec![("system:init", operator_cert("carol", 4))],
        0,
        "actor_not_allowed",
    );
}

#[test]
fn violations_are_all_reported_and_capped() {
    let mut fx = Fx::new();
    fx.batch(
        (0..130u8)
            .map(|i| {
                (
                    "operator:bob",
                    Event::Revoked(Revoked {
                        serial: vec![0xee, i],
                        reason: 1,
                    }),
                )
            })
            .collect(),
    );
    let r = fx.verify();
    assert_eq!(r.outcome, Outcome::Violations);
    assert_eq!(r.violations_total, 130);
    assert_eq!(r.violations.len(), 100);
}

/// The appliance appends a certificate issued through enrollment and the EnrollmentUsed
/// that spends the token in one batch; an EnrollmentUsed naming another serial is not
/// that certificate's use.
#[test]
fn enrollment_cert_followed_by_the_use_of_another_serial_is_flagged() {
    let mut fx = Fx::new();
    let now = fx.now_s();
    fx.push("operator:alice", enrollment(0xa2, now + 600));
    let first = fx.batch(vec![
        (
            "enrollment:billing",
            cert(&[0x11, 1], "billing", now + 1, 3600),
        ),
        ("enrollment:billing", used(0xa2, &[0x11, 2], "billing")),
    ]);
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1, "{v:?}");
    assert!(
        v.iter()
            .any(|(i, rule)| rule == "enrollment_cert_without_use" && *i == first),
        "{v:?}"
    );
}

/// A change of the integration after a request supersedes it (the appliance answers 409
/// stale); approving it anyway could silently revert the intermediate change.
#[test]
fn approving_a_superseded_request_is_flagged() {
    let mut fx = Fx::new();
    let wider = with(|s| s.scopes.push("invoices:write".into()));
    let req = fx.push("operator:alice", request(wider.clone()));
    let owner = with(|s| s.business_owner = "treasury".into());
    fx.push("operator:bob", change(ChangeKind::OwnerChanged, owner, 0));
    let appr = fx.push(
        "operator:bob",
        change(ChangeKind::IncreaseApproved, wider.clone(), req),
    );
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1, "{v:?}");
    assert!(
        v.iter()
            .any(|(i, rule)| rule == "approval_superseded" && *i == appr),
        "{v:?}"
    );
    // Without the intermediate change the same approval is clean.
    let mut ok = Fx::new();
    let req = ok.push("operator:alice", request(wider.clone()));
    ok.push(
        "operator:bob",
        change(ChangeKind::IncreaseApproved, wider, req),
    );
    assert_eq!(audit_verify(&ok), (0, vec![]));
}

/// Review-by may lie at most 365 (routine) / 90 (privileged) days after the record that
/// sets it, at registration as at recertification: the rule the appliance applies
/// (`governance::ReviewCaps`); a deployment with other caps passes them to the auditor.
#[test]
fn review_by_beyond_the_class_cap_is_flagged() {
    const DAY: u64 = 86_400;
    let register =
        |spec: IntegrationSpec| Event::IntegrationRegistered(IntegrationRegistered { spec });
    let named = |name: &str, class: PrivilegeClass, review_by: u64| {
        let mut s = spec(name);
        s.privilege_class = class;
        s.review_by = review_by;
        s
    };
    let mut fx = Fx::new();
    let t = |fx: &Fx| fx.now_s() + 1; // the time of the next record
    let forever = 253_402_300_799; // 9999-12-31T23:59:59Z
    let far = fx.push(
        "operator:alice",
        register(named("payroll", PrivilegeClass::Routine, forever)),
    );
    let at_cap = t(&fx) + 365 * DAY;
    fx.push(
        "operator:alice",
        register(named("ok-routine", PrivilegeClass::Routine, at_cap)),
    );
    let at_cap = t(&fx) + 90 * DAY;
    fx.push(
        "operator:alice",
        register(named("ok-vault", PrivilegeClass::Privileged, at_cap)),
    );
    let over = t(&fx) + 91 * DAY;
    let vault = fx.push(
        "operator:alice",
        register(named("vault", PrivilegeClass::Privileged, over)),
    );
    let recert = t(&fx) + 380 * DAY;
    let renewed = fx.push(
        "operator:alice",
        change(ChangeKind::Recertified, with(|s| s.review_by = recert), 0),
    );
    let r = fx.verify();
    assert_eq!(r.outcome, Outcome::Violations);
    let flagged: Vec<u64> = r
        .violations
        .iter()
        .filter(|v| v.rule == "review_too_far")
        .map(|v| v.index)
        .collect();
    assert_eq!(flagged, [far, vault, renewed], "{:#?}", r.violations);
    assert_eq!(r.violations_total, 3, "{:#?}", r.violations);
    let detail = &r.violations[0].detail;
    assert!(
        detail.contains("at most 365 days") && detail.contains("payroll"),
        "{detail}"
    );

    // With the deployment's caps (routine 400 days), only the year-9999 one remains.
    let mut opts = options(None);
    opts.review_caps.routine_days = 400;
    opts.review_caps.privileged_days = 100;
    let r = credmint_ledger::audit::verify_bundle(
        &fx.bundle()[..],
        &opts,
        &mut |_, _| {},
        &mut |_, _| {},
    );
    let flagged: Vec<u64> = r.violations.iter().map(|v| v.index).collect();
    assert_eq!(flagged, [far], "{:#?}", r.violations);
}
