//! The auditor's view of operators (FORMAT.md §13.5): who is a known operator, how each
//! was minted ([`Lineage`]), and the pending operator requests. Decisions are returned as
//! data; [`super::semantic`] turns them into violations.

use std::collections::HashMap;

use crate::event::{OperatorApproved, OperatorRequested};
use crate::governance::{may_approve, ApprovalRefusal, Lineage};

#[derive(Debug)]
struct Request {
    name: String,
    key_fingerprint: [u8; 32],
    requester: String,
    approved: bool,
}

/// Known operators with their lineage, and operator requests by ledger index.
#[derive(Debug, Default)]
pub(crate) struct OperatorBook {
    /// name -> lineage (`None`: an init operator).
    known: HashMap<String, Option<Lineage>>,
    requests: HashMap<u64, Request>,
}

impl OperatorBook {
    /// Whether `name` holds (or held) an operator certificate.
    pub(crate) fn is_known(&self, name: &str) -> bool {
        self.known.contains_key(name)
    }

    /// Number of known operators.
    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }

    /// Records that `name` exists, minted with `lineage`; a name already known keeps the
    /// lineage it was first minted with (a renewal does not change who let it in).
    pub(crate) fn add(&mut self, name: &str, lineage: Option<Lineage>) {
        self.known.entry(name.to_owned()).or_insert(lineage);
    }

    /// [`may_approve`] over this ledger's lineage so far.
    pub(crate) fn may_approve(
        &self,
        approver: &str,
        requester: &str,
    ) -> Result<(), ApprovalRefusal> {
        may_approve(approver, requester, |n| {
            self.known.get(n).cloned().flatten()
        })
    }

    /// Remembers the request at `index` by operator `requester`.
    pub(crate) fn request(&mut self, index: u64, requester: &str, r: &OperatorRequested) {
        self.requests.insert(
            index,
            Request {
                name: r.name.clone(),
                key_fingerprint: r.key_fingerprint,
                requester: requester.to_owned(),
                approved: false,
            },
        );
    }

    /// Applies an approval by `approver` (an operator name, or `None` when the actor is
    /// not an operator) and returns every reason it is invalid. The new operator is
    /// recorded even when the approval is invalid: the record exists, and its lineage must
    /// taint later approvals by it.
    pub(crate) fn approve(&mut self, approver: Option<&str>, a: &OperatorApproved) -> Vec<String> {
        let mut problems = Vec::new();
        let ri = a.request_index;
        let requester = match self.requests.get_mut(&ri) {
            None => {
                problems.push(format!(
                    "request_index {ri} is not an earlier operator_requested"
                ));
                None
            }
            Some(req) => {
                if req.approved {
                    problems.push(format!("operator request {ri} was approved before"));
                }
                req.approved = true;
                if req.name != a.name {
                    problems.push(format!(
                        "approves operator {:?}, request {ri} asked for {:?}",
                        a.name, req.name
                    ));
                }
                if req.key_fingerprint != a.key_fingerprint {
                    problems.push(format!("key fingerprint differs from request {ri}"));
                }
                Some(req.requester.clone())
            }
        };
        if self.is_known(&a.name) {
            problems.push(format!("operator {:?} already exists", a.name));
        }
        match approver {
            Some(name) if self.is_known(name) => {
                if let Some(req) = &requester {
                    if let Err(refusal) = self.may_approve(name, req) {
                        problems.push(refusal.to_string());
                    }
                }
            }
            Some(name) => problems.push(format!("approver {name:?} is not a known operator")),
            None => problems.push("approver is not an operator: actor".into()),
        }
        let lineage = match (&requester, approver) {
            (Some(r), Some(a)) => Some(Lineage {
                requested_by: r.clone(),
                approved_by: a.to_owned(),
            }),
            _ => approver.map(|a| Lineage {
                requested_by: a.to_owned(),
                approved_by: a.to_owned(),
            }),
        };
        self.add(&a.name, lineage);
        problems
    }
}
