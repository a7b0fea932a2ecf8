//! The dual-control independence rule, in one place: the appliance calls it before it
//! writes an approval, the auditor calls it when it replays one (FORMAT.md §13.5), so the
//! two cannot disagree about who may approve whom.
//!
//! **The rule.** An approval (of an operator mint, or of an integration's authority
//! increase) by operator `approver` of a request by operator `requester` is refused when
//!
//! 1. `approver == requester` (self-approval);
//! 2. `requester` approved (or, on the direct path, issued) `approver`'s own mint; or
//! 3. `requester` appears anywhere on `approver`'s chain of requesters:
//!    `requested_by(approver)`, `requested_by(requested_by(approver))`, and so on.
//!
//! **Why the request chain is followed transitively.** The requester of a mint supplies
//! the new operator's public key (`OperatorRequested.spki_der`), so it may hold the
//! private key: the requested operator can be the requester's puppet. A puppet's own
//! requests may again name keys the original requester holds, so every operator down a
//! request chain is potentially controlled by its root; stopping after one step would let
//! A request B, B request C, and C approve A. Approving, by contrast, never hands over a
//! key, so the approver of a mint gains no control over the minted operator; rule 2 is a
//! single-step conflict-of-interest check (and catches the direct path, where the one
//! operator who issued a certificate counts as both requester and approver).
//!
//! Operators from init/genesis have no lineage and end the chain. A corrupt ledger could
//! describe a cycle (A requested by B, B requested by A); the walk stops at the first
//! repeated name instead of looping.

use std::collections::HashSet;

pub mod review;
pub use review::{ReviewCaps, ReviewTooFar};

/// How an operator name came to exist: who asked for it and who let it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The operator whose request named this operator (and its key).
    pub requested_by: String,
    /// The operator whose approval (or direct issuance) created it.
    pub approved_by: String,
}

/// Why [`may_approve`] refused an approval.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The approver made the request.
    #[error("operator {operator:?} cannot approve their own request")]
    SelfApproval {
        /// The operator on both sides.
        operator: String,
    },
    /// The requester let the approver in.
    #[error("operator {approver:?} was approved or issued by the requester {requester:?}")]
    MintedByRequester {
        /// The approving operator.
        approver: String,
        /// The requesting operator.
        requester: String,
    },
    /// The approver descends from a request of the requester.
    #[error(
        "operator {approver:?} was minted on a request chain rooted at the requester {requester:?} ({})",
        chain.join(" <- ")
    )]
    RequestedByRequester {
        /// The approving operator.
        approver: String,
        /// The requesting operator.
        requester: String,
        /// `approver`, then each `requested_by` up to and including `requester`.
        chain: Vec<String>,
    },
}

/// Whether `approver` may approve a request made by `requester` (see the module docs).
/// `lineage(name)` returns how `name` was minted, or `None` for an operator created at
/// init/genesis (or unknown, which ends the chain the same way).
pub fn may_approve(
    approver: &str,
    requester: &str,
    lineage: impl Fn(&str) -> Option<Lineage>,
) -> Result<(), ApprovalRefusal> {
    if approver == requester {
        return Err(ApprovalRefusal::SelfApproval {
            operator: approver.to_owned(),
        });
    }
    let Some(first) = lineage(approver) else {
        return Ok(());
    };
    if first.approved_by == requester {
        return Err(ApprovalRefusal::MintedByRequester {
            approver: approver.to_owned(),
            requester: requester.to_owned(),
        });
    }
    let mut chain = vec![approver.to_owned()];
    let mut seen: HashSet<String> = chain.iter().cloned().collect();
    let mut next = Some(first);
    while let Some(l) = next {
        chain.push(l.requested_by.clone());
        if l.requested_by == requester {
            return Err(ApprovalRefusal::RequestedByRequester {
                approver: approver.to_owned(),
                requester: requester.to_owned(),
                chain,
            });
        }
        if !seen.insert(l.requested_by.clone()) {
            break;
        }
        next = lineage(&l.requested_by);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(rows: &[(&str, &str, &str)]) -> HashMap<String, Lineage> {
        rows.iter()
            .map(|(name, req, appr)| {
                (
                    (*name).to_owned(),
                    Lineage {
                        requested_by: (*req).to_owned(),
                        approved_by: (*appr).to_owned(),
                    },
                )
            })
            .collect()
    }

    fn check(
        t: &HashMap<String, Lineage>,
        approver: &str,
        requester: &str,
    ) -> Result<(), ApprovalRefusal> {
        may_approve(approver, requester, |n| t.get(n).cloned())
    }

    #[test]
    fn independent_operators_may_approve() {
        // alice and bob from init; carol requested by alice, approved by bob.
        let t = table(&[("carol", "alice", "bob")]);
        assert_eq!(check(&t, "bob", "alice"), Ok(()));
        assert_eq!(check(&t, "alice", "bob"), Ok(()));
        // carol approving bob's request: bob only approved carol, alice requested her.
        assert!(check(&t, "carol", "bob").is_err());
        assert_eq!(check(&t, "bob", "carol"), Ok(()));
    }

    #[test]
    fn self_approval_is_refused() {
        let t = table(&[]);
        assert!(matches!(
            check(&t, "alice", "alice"),
            Err(ApprovalRefusal::SelfApproval { .. })
        ));
    }

    #[test]
    fn operator_minted_by_the_requester_is_refused() {
        // Direct path: alice issued puppet herself.
        let t = table(&[("puppet", "alice", "alice"), ("carol", "dave", "alice")]);
        assert!(matches!(
            check(&t, "puppet", "alice"),
            Err(ApprovalRefusal::MintedByRequester { .. })
        ));
        assert!(matches!(
            check(&t, "carol", "alice"),
            Err(ApprovalRefusal::MintedByRequester { .. })
        ));
    }

    #[test]
    fn the_request_chain_is_followed_transitively() {
        // alice requested b (bob approved), b requested c (bob approved), c requested d.
        let t = table(&[("b", "alice", "bob"), ("c", "b", "bob"), ("d", "c", "bob")]);
        match check(&t, "d", "alice") {
            Err(ApprovalRefusal::RequestedByRequester { chain, .. }) => {
                assert_eq!(chain, ["d", "c", "b", "alice"]);
            }
            other => panic!("expected a chain refusal, got {other:?}"),
        }
        assert!(check(&t, "d", "b").is_err());
        // The approver side is not followed: bob approved all of them but requested none.
        assert!(check(&t, "c", "bob").is_err()); // rule 2: bob approved c
        let t2 = table(&[("b", "alice", "bob"), ("c", "b", "erin")]);
        assert_eq!(check(&t2, "c", "bob"), Ok(()));
    }

    #[test]
    fn cycles_terminate() {
        let t = table(&[("x", "y", "z"), ("y", "x", "z")]);
        assert_eq!(check(&t, "x", "alice"), Ok(()));
        assert!(check(&t, "x", "y").is_err());
        let self_loop = table(&[("x", "x", "z")]);
        assert_eq!(check(&self_loop, "x", "alice"), Ok(()));
    }
}
