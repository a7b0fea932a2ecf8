//! Monitoring tokens (FORMAT.md §13.6): honest grants and withdrawals verify; grants by a
//! non-operator, a reused token hash, a second live grant of a name and a withdrawal of
//! a grant that is not live are each reported by the `credmint-audit` binary (exit 1).

use credmint_ledger::event::{Event, MonitorTokenCreated, MonitorTokenRevoked};

use crate::fixture::*;

fn grant(fx: &Fx, name: &str, hash: u8) -> Event {
    Event::MonitorTokenCreated(MonitorTokenCreated {
        name: name.into(),
        token_hash: [hash; 32],
        expires_at: fx.now_s() + 86_400,
    })
}

fn withdraw(name: &str, hash: u8) -> Event {
    Event::MonitorTokenRevoked(MonitorTokenRevoked {
        name: name.into(),
        token_hash: [hash; 32],
    })
}

#[test]
fn grant_withdraw_and_grant_again_verifies() {
    let mut fx = Fx::new();
    let g = grant(&fx, "prometheus", 1);
    fx.push("operator:alice", g);
    fx.push("operator:bob", withdraw("prometheus", 1));
    let g = grant(&fx, "prometheus", 2);
    fx.push("operator:alice", g);
    assert_eq!(audit_verify(&fx), (0, vec![]));
    assert_eq!(fx.verify().stats.unwrap().monitor_tokens, 2);
}

#[test]
fn every_invalid_grant_or_withdrawal_is_reported() {
    let mut fx = Fx::new();
    let g = grant(&fx, "prometheus", 1);
    fx.push("operator:alice", g);
    let by_workload = grant(&fx, "scraper", 3);
    let by_workload = fx.push("workload:billing", by_workload);
    let second_live = grant(&fx, "prometheus", 4);
    let second_live = fx.push("operator:alice", second_live);
    let reused_hash = grant(&fx, "grafana", 1);
    let reused_hash = fx.push("operator:alice", reused_hash);
    let not_live = fx.push("operator:alice", withdraw("nobody", 9));
    let (code, v) = audit_verify(&fx);
    assert_eq!(code, 1, "{v:?}");
    let has = |i: u64, rule: &str| v.iter().any(|(at, r)| *at == i && r == rule);
    assert!(has(by_workload, "actor_not_allowed"), "{v:?}");
    assert!(has(second_live, "monitor_token_invalid"), "{v:?}");
    assert!(has(reused_hash, "monitor_token_invalid"), "{v:?}");
    assert!(has(not_live, "monitor_token_invalid"), "{v:?}");
}
