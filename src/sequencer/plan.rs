//! Deciding one command against the committed state plus what earlier commands of the
//! same batch claimed: the events it derives, its checks, its claims and its effects.
//! Pure with respect to the ledger: reads a registry snapshot, writes nothing.

use std::collections::{HashMap, HashSet};

use credmint_ledger::event::{
    AnomalyFlagged, AnomalyKind, ChangeKind, EnrollmentUsed, Event, IntegrationChanged,
    IntegrationRegistered, IntegrationSpec, IntegrationStatus, KeyInfo, KeyRole,
    MonitorTokenRevoked, PrivilegeClass, Revoked, TokenRevoked,
};
use credmint_ledger::governance::may_approve;
use credmint_ledger::verify::semantic::increases_authority;
use credmint_ledger::NewEntry;

use super::command::{Actor, Basis, Change, Command, KeySwap, Op, Outcome, Refusal, Slack, Target};
use super::effects::Effect;
use crate::metrics::{Class, Tallied};
pub use crate::registry::spec_hash;
use crate::registry::{CredentialKind, LiveCredential, ProjectionError, Registry};
use crate::revoke::SUPERSEDED;

/// Most revocations one transaction of a revoke-all or decommissioning carries; the rest
/// follow in the next transactions, before any other command (see `super::run`).
pub const REVOKE_CHUNK: usize = 4096;
/// RFC 5280 cessationOfOperation: the reason of every revocation by decommissioning.
pub const CESSATION_OF_OPERATION: u8 = 5;
/// Actor of automatic events (signals, privilege expansion, automatic suspension).
pub const SIGNALS: &str = "system:signals";

/// Why a command could not be planned.
#[derive(Debug)]
pub enum PlanError {
    Refused(Refusal),
    /// Reading committed state failed: not the caller's fault, and not a "not found".
    Storage(String),
}

impl From<Refusal> for PlanError {
    fn from(r: Refusal) -> Self {
        PlanError::Refused(r)
    }
}

impl From<ProjectionError> for PlanError {
    fn from(e: ProjectionError) -> Self {
        PlanError::Storage(e.to_string())
    }
}

type Result<T> = std::result::Result<T, PlanError>;

/// What the batch so far has claimed, so later commands see earlier ones.
#[derive(Default)]
pub struct Claims {
    enrollments: HashSet<[u8; 32]>,
    serials: HashSet<Vec<u8>>,
    jtis: HashSet<String>,
    names: HashSet<String>,
    operators: HashSet<String>,
    /// Monitoring token names granted or withdrawn in this batch.
    monitors: HashSet<String>,
    /// Revoked in this batch, with the ledger index their revocation will have.
    revoked_serials: HashMap<Vec<u8>, u64>,
    revoked_jtis: HashMap<String, u64>,
    /// Integrations whose spec a command of this batch changed.
    changed: HashSet<String>,
    approved: HashSet<u64>,
    operator_requests: HashSet<u64>,
    /// Key roles rotated in this batch (see `role_slot`).
    rotated: HashSet<u8>,
    /// Integrations that receive a credential in this batch.
    issued_for: HashSet<String>,
    /// ACME EAB key ids created or spent, accounts created or changed, and account key
    /// thumbprints taken in this batch.
    acme_eabs: HashSet<String>,
    acme_accounts: HashSet<String>,
    acme_keys: HashSet<String>,
}

/// A claim a plan makes on the rest of its batch, recorded only once the plan is accepted.
enum Claim {
    Enrollment([u8; 32]),
    Serial(Vec<u8>),
    Jti(String),
    Name(String),
    Operator(String),
    Monitor(String),
    /// Revocation at this offset among the plan's entries.
    RevokedSerial(Vec<u8>, usize),
    RevokedJti(String, usize),
    Changed(String),
    Approved(u64),
    OperatorRequest(u64),
    Rotated(u8),
    Issued(String),
    AcmeEab(String),
    AcmeAccount(String),
    AcmeKey(String),
}

/// A decided command.
pub struct Plan {
    pub entries: Vec<NewEntry>,
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
    /// A revoke-all that left live credentials for the next transaction.
    pub more: bool,
    claims: Vec<Claim>,
}

impl Plan {
    fn new(outcome: Outcome) -> Plan {
        Plan {
            entries: Vec::new(),
            outcome,
            effects: Vec::new(),
            more: false,
            claims: Vec::new(),
        }
    }

    fn push(&mut self, actor: &str, event: Event, timestamp_ms: u64) {
        self.entries.push(NewEntry {
            timestamp_ms,
            actor: actor.to_string(),
            event,
        });
    }

    /// Records this plan's claims; `first_index` is the ledger index its first entry gets.
    pub fn claim(&mut self, claims: &mut Claims, first_index: u64) {
        for claim in self.claims.drain(..) {
            match claim {
                Claim::Enrollment(h) => drop(claims.enrollments.insert(h)),
                Claim::Serial(s) => drop(claims.serials.insert(s)),
                Claim::Jti(j) => drop(claims.jtis.insert(j)),
                Claim::Name(n) => drop(claims.names.insert(n)),
                Claim::Operator(n) => drop(claims.operators.insert(n)),
                Claim::Monitor(n) => drop(claims.monitors.insert(n)),
                Claim::RevokedSerial(s, at) => {
                    claims.revoked_serials.insert(s, first_index + at as u64);
                }
                Claim::RevokedJti(j, at) => {
                    claims.revoked_jtis.insert(j, first_index + at as u64);
                }
                Claim::Changed(n) => drop(claims.changed.insert(n)),
                Claim::Approved(i) => drop(claims.approved.insert(i)),
                Claim::OperatorRequest(i) => drop(claims.operator_requests.insert(i)),
                Claim::Rotated(r) => drop(claims.rotated.insert(r)),
                Claim::Issued(n) => drop(claims.issued_for.insert(n)),
                Claim::AcmeEab(k) => drop(claims.acme_eabs.insert(k)),
                Claim::AcmeAccount(a) => drop(claims.acme_accounts.insert(a)),
                Claim::AcmeKey(t) => drop(claims.acme_keys.insert(t)),
            }
        }
    }
}

/// Everything a plan reads.
pub struct Context<'a> {
    pub registry: &'a Registry,
    /// Keys in force as committed (rotations earlier in the batch are in `claims`).
    pub keys_in_force: &'a [KeyInfo],
    /// Integrations whose revoke-all or decommissioning continues in a later transaction:
    /// nothing is issued to them until it is done.
    pub revoking: &'a HashSet<String>,
    pub claims: &'a Claims,
    pub now_ms: u64,
    /// False for a chunked revocation's continuation: the decision was taken and
    /// authorised when its first chunk committed.
    pub check_actor: bool,
}

impl Context<'_> {
    fn now(&self) -> u64 {
        self.now_ms / 1000
    }
}

/// Decides `command`. On success every entry passed the ledger's own limits, so the
/// batch it joins cannot fail because of it.
pub fn plan(ctx: &Context<'_>, command: &mut Command) -> Result<Plan> {
    if ctx.check_actor {
        check_actor(ctx, &command.actor)?;
    }
    let actor = command.actor.ledger_name();
    let plan = match &mut command.op {
        Op::IssueCertificate {
            cert,
            enrollment,
            basis,
            peer,
        } => {
            let class = issuable(ctx, &cert.integration, basis, KeyRole::Ca)?;
            let enrolling = matches!(command.actor, Actor::Enrollment { .. });
            if enrolling != enrollment.is_some() {
                return Err(Refusal::Invalid(
                    "an enrollment spends exactly one enrollment token; a renewal none".into(),
                )
                .into());
            }
            if let Actor::Workload { integration, .. } | Actor::Enrollment { integration } =
                &command.actor
            {
                if *integration != cert.integration {
                    return Err(Refusal::ActorUnknown.into());
                }
            }
            if let Actor::Acme { account, key } = &command.actor {
                let row = acme_account_valid(ctx, account, key)?;
                if row.integration != cert.integration {
                    return Err(Refusal::ActorUnknown.into());
                }
            }
            if ctx.claims.serials.contains(&cert.serial)
                || ctx.registry.certificate(&cert.serial)?.is_some()
            {
                return Err(Refusal::SerialTaken.into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::CertificateIssued(cert.clone()), ctx.now_ms);
            if let Some(hash) = enrollment {
                spend_enrollment(ctx, hash, &cert.integration)?;
                p.push(
                    &actor,
                    Event::EnrollmentUsed(EnrollmentUsed {
                        integration: cert.integration.clone(),
                        token_hash: *hash,
                        serial: cert.serial.clone(),
                    }),
                    ctx.now_ms,
                );
                p.claims.push(Claim::Enrollment(*hash));
            }
            p.claims.push(Claim::Serial(cert.serial.clone()));
            p.claims.push(Claim::Issued(cert.integration.clone()));
            p.effects
                .push(issued_effect(ctx, &cert.integration, *peer)?);
            let what = match enrollment {
                Some(_) => Tallied::Enrollment,
                None => Tallied::Renewal,
            };
            p.effects.push(Effect::Tally(what, class));
            p
        }
        Op::IssueToken { token, basis, peer } => {
            let class = issuable(ctx, &token.integration, basis, KeyRole::Token)?;
            match &command.actor {
                Actor::Workload { integration, .. } if *integration == token.integration => {}
                _ => return Err(Refusal::ActorUnknown.into()),
            }
            if ctx.claims.jtis.contains(&token.jti) || ctx.registry.token(&token.jti)?.is_some() {
                return Err(Refusal::JtiTaken.into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::TokenIssued(token.clone()), ctx.now_ms);
            p.claims.push(Claim::Jti(token.jti.clone()));
            p.claims.push(Claim::Issued(token.integration.clone()));
            p.effects
                .push(issued_effect(ctx, &token.integration, *peer)?);
            p.effects.push(Effect::Tally(Tallied::Token, class));
            p
        }
        Op::OperatorCertificate(cert) => {
            match &command.actor {
                Actor::Operator { name, .. } if *name == cert.name => {}
                _ => {
                    operator_name_free(ctx, &cert.name)?;
                    return Err(Refusal::Invalid(
                        "a new operator needs a request approved by a second operator".into(),
                    )
                    .into());
                }
            }
            if ctx.claims.serials.contains(&cert.serial)
                || ctx.registry.certificate(&cert.serial)?.is_some()
            {
                return Err(Refusal::SerialTaken.into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::OperatorCertIssued(cert.clone()), ctx.now_ms);
            p.claims.push(Claim::Serial(cert.serial.clone()));
            p
        }
        Op::RequestOperator(request) => {
            if !matches!(command.actor, Actor::Operator { .. }) {
                return Err(
                    Refusal::Invalid("only an operator may request an operator".into()).into(),
                );
            }
            operator_name_free(ctx, &request.name)?;
            let mut p = Plan::new(Outcome::Appended);
            p.push(
                &actor,
                Event::OperatorRequested(request.clone()),
                ctx.now_ms,
            );
            p
        }
        Op::ApproveOperator(approval) => {
            let Actor::Operator { name: approver, .. } = &command.actor else {
                return Err(
                    Refusal::Invalid("only an operator may approve an operator".into()).into(),
                );
            };
            let request = ctx
                .registry
                .operator_request(approval.request_index)?
                .filter(|r| !ctx.claims.operator_requests.contains(&r.index))
                .ok_or(Refusal::NotPending(approval.request_index))?;
            let fingerprint: [u8; 32] = sha2::Digest::finalize(
                <sha2::Sha256 as sha2::Digest>::new_with_prefix(&request.spki_der),
            )
            .into();
            if request.name != approval.name || fingerprint != approval.key_fingerprint {
                return Err(Refusal::Invalid(
                    "the approval does not match the requested name and key".into(),
                )
                .into());
            }
            independent(ctx, approver, &request.requester)?;
            operator_name_free(ctx, &approval.name)?;
            if ctx.claims.serials.contains(&approval.serial)
                || ctx.registry.certificate(&approval.serial)?.is_some()
            {
                return Err(Refusal::SerialTaken.into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(
                &actor,
                Event::OperatorApproved(approval.clone()),
                ctx.now_ms,
            );
            p.claims.push(Claim::Serial(approval.serial.clone()));
            p.claims.push(Claim::Operator(approval.name.clone()));
            p.claims
                .push(Claim::OperatorRequest(approval.request_index));
            p
        }
        Op::Register(spec) => {
            if ctx.claims.names.contains(&spec.name)
                || ctx.registry.integration(&spec.name)?.is_some()
            {
                return Err(Refusal::NameTaken(spec.name.clone()).into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(
                &actor,
                Event::IntegrationRegistered(IntegrationRegistered { spec: spec.clone() }),
                ctx.now_ms,
            );
            p.claims.push(Claim::Name(spec.name.clone()));
            p.claims.push(Claim::Changed(spec.name.clone()));
            p
        }
        Op::CreateEnrollment(e) => {
            standing(ctx, &e.integration)?;
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::EnrollmentCreated(e.clone()), ctx.now_ms);
            p
        }
        Op::GrantMonitor(m) => {
            let live = ctx
                .registry
                .monitor_named(&m.name)?
                .is_some_and(|row| row.live(ctx.now()));
            if live || ctx.claims.monitors.contains(&m.name) {
                return Err(Refusal::MonitorNameTaken(m.name.clone()).into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::MonitorTokenCreated(m.clone()), ctx.now_ms);
            p.claims.push(Claim::Monitor(m.name.clone()));
            p
        }
        Op::WithdrawMonitor { name } => {
            let row = ctx
                .registry
                .monitor_named(name)?
                .filter(|_| !ctx.claims.monitors.contains(name))
                .ok_or_else(|| Refusal::UnknownMonitor(name.clone()))?;
            let mut p = Plan::new(Outcome::Appended);
            p.push(
                &actor,
                Event::MonitorTokenRevoked(MonitorTokenRevoked {
                    name: name.clone(),
                    token_hash: row.token_hash,
                }),
                ctx.now_ms,
            );
            p.claims.push(Claim::Monitor(name.clone()));
            p
        }
        Op::Revoke { target, reason } => {
            acme_may_revoke(ctx, &command.actor, target)?;
            revoke_one(ctx, &actor, target, *reason)?
        }
        Op::CreateAcmeEab(e) => {
            if !matches!(command.actor, Actor::Operator { .. }) {
                return Err(Refusal::Invalid("only an operator hands out EAB keys".into()).into());
            }
            standing(ctx, &e.integration)?;
            if ctx.claims.acme_eabs.contains(&e.kid) || ctx.registry.acme_eab(&e.kid)?.is_some() {
                return Err(Refusal::Invalid("EAB key id collision; retry".into()).into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::AcmeEabCreated(e.clone()), ctx.now_ms);
            p.claims.push(Claim::AcmeEab(e.kid.clone()));
            p
        }
        Op::CreateAcmeAccount(a) => acme_account_plan(ctx, &command.actor, &actor, a)?,
        Op::ChangeAcmeAccount(c) => acme_change_plan(ctx, &command.actor, &actor, c)?,
        Op::RevokeIntegration {
            integration,
            reason,
        } => {
            if ctx.registry.integration(integration)?.is_none() {
                return Err(Refusal::UnknownIntegration(integration.clone()).into());
            }
            let mut p = Plan::new(Outcome::Revoked {
                certificates: 0,
                tokens: 0,
            });
            revoke_live(ctx, &actor, integration, *reason, &mut p)?;
            p
        }
        Op::Change {
            integration,
            base,
            change,
        } => change_plan(ctx, &actor, &command.actor, integration, *base, change)?,
        Op::RotateKey { event, swap } => {
            // The store would refuse a rotation whose old key is no longer in force (and
            // with it the whole batch): refuse it alone.
            if ctx.claims.rotated.contains(&role_slot(event.role))
                || !ctx.keys_in_force.contains(&event.old_key)
            {
                return Err(Refusal::Invalid(
                    "the rotated key is no longer the key in force; rotate again".into(),
                )
                .into());
            }
            let mut p = Plan::new(Outcome::Appended);
            p.claims.push(Claim::Rotated(role_slot(event.role)));
            p.push(&actor, Event::KeyRotated(event.clone()), ctx.now_ms);
            let swap = std::mem::replace(swap, KeySwap(Box::new(|_| Ok(()))));
            p.effects.push(Effect::SwapKeys(swap));
            p.effects.push(Effect::Checkpoint);
            p
        }
        Op::Reuse(r) => {
            let mut p = Plan::new(Outcome::Appended);
            p.push(&actor, Event::ReuseDetected(r.clone()), ctx.now_ms);
            p
        }
        Op::Anomaly {
            flagged,
            auto_suspend,
        } => anomaly(ctx, &actor, flagged.clone(), *auto_suspend)?,
        Op::Barrier => Plan::new(Outcome::Unchanged),
    };
    for entry in &plan.entries {
        entry
            .validate()
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
    }
    Ok(plan)
}

/// The certificate that authenticated the actor is known, unrevoked (also by this
/// batch) and unexpired, and belongs to the actor it claims.
fn check_actor(ctx: &Context<'_>, actor: &Actor) -> Result<()> {
    let Some(serial) = actor.credential() else {
        return Ok(());
    };
    let row = ctx
        .registry
        .certificate(serial)?
        .ok_or(Refusal::ActorUnknown)?;
    let owner_matches = match actor {
        Actor::Operator { name, .. } => row.kind == CredentialKind::Operator && row.owner == *name,
        Actor::Workload { integration, .. } => {
            row.kind == CredentialKind::Workload && row.owner == *integration
        }
        _ => false,
    };
    if !owner_matches {
        return Err(Refusal::ActorUnknown.into());
    }
    let slack = match actor {
        Actor::Workload { slack, .. } => *slack,
        _ => Slack::default(),
    };
    // A revocation in this very batch is not forgiven: its reason is not at hand.
    let revoked = ctx.claims.revoked_serials.contains_key(serial)
        || (row.revoked_index.is_some() && !slack.forgives_revocation(row.reason));
    if revoked {
        return Err(Refusal::ActorRevoked.into());
    }
    if !slack.covers(row.not_after, ctx.now()) {
        return Err(Refusal::ActorExpired.into());
    }
    Ok(())
}

/// The ACME account `id` exists, is not deactivated (also not earlier in this batch) and
/// has not changed earlier in this batch (a key change and an order signed with the old key
/// must not both commit).
/// `key` is the thumbprint the request was signed with: it must still be the account's.
fn acme_account_valid(
    ctx: &Context<'_>,
    id: &str,
    key: &str,
) -> Result<crate::registry::AcmeAccountRow> {
    let gone = || Refusal::AcmeAccountGone(id.to_string());
    let row = ctx.registry.acme_account(id)?.ok_or_else(gone)?;
    if row.deactivated {
        return Err(gone().into());
    }
    if ctx.claims.acme_accounts.contains(id) || credmint_ledger::event::account_id(&row.jwk) != key
    {
        return Err(Refusal::AcmeKeyChanged.into());
    }
    Ok(row)
}

/// An ACME revocation is by an account of the certificate's integration, or by the
/// certificate's own key (the edge checked the signature; here only the serial).
fn acme_may_revoke(ctx: &Context<'_>, actor: &Actor, target: &Target) -> Result<()> {
    let serial = match target {
        Target::Certificate(serial) => serial,
        Target::Token(_) => return Ok(()),
    };
    match actor {
        Actor::Acme { account, key } => {
            let row = acme_account_valid(ctx, account, key)?;
            let owner = ctx.registry.certificate(serial)?.map(|c| c.owner);
            if owner.as_deref() != Some(row.integration.as_str()) {
                return Err(Refusal::UnknownCredential(target.to_string()).into());
            }
        }
        Actor::AcmeKey { serial: proven } if proven != serial => {
            return Err(Refusal::ActorUnknown.into());
        }
        _ => {}
    }
    Ok(())
}

/// A new ACME account: its EAB key is known, for the same integration, unspent and
/// unexpired; the integration may receive credentials; the key is no account's yet.
fn acme_account_plan(
    ctx: &Context<'_>,
    actor: &Actor,
    actor_name: &str,
    a: &credmint_ledger::event::AcmeAccountCreated,
) -> Result<Plan> {
    if !matches!(actor, Actor::Acme { account, .. } if *account == a.account) {
        return Err(Refusal::Invalid("an account is created by itself".into()).into());
    }
    let eab = ctx
        .registry
        .acme_eab(&a.eab_kid)?
        .ok_or(Refusal::AcmeEab("unknown EAB key id"))?;
    if eab.integration != a.integration {
        return Err(Refusal::AcmeEab("unknown EAB key id").into());
    }
    if eab.bound_index.is_some() || ctx.claims.acme_eabs.contains(&a.eab_kid) {
        return Err(Refusal::AcmeEab("this EAB key already bound an account").into());
    }
    if ctx.now() > eab.expires_at {
        return Err(Refusal::AcmeEab("this EAB key has expired").into());
    }
    standing(ctx, &a.integration)?;
    let thumbprint = credmint_ledger::event::account_id(&a.jwk);
    acme_key_free(ctx, &thumbprint)?;
    if ctx.claims.acme_accounts.contains(&a.account)
        || ctx.registry.acme_account(&a.account)?.is_some()
    {
        return Err(Refusal::AcmeKeyTaken.into());
    }
    let mut p = Plan::new(Outcome::Appended);
    p.push(actor_name, Event::AcmeAccountCreated(a.clone()), ctx.now_ms);
    p.claims.push(Claim::AcmeEab(a.eab_kid.clone()));
    p.claims.push(Claim::AcmeAccount(a.account.clone()));
    p.claims.push(Claim::AcmeKey(thumbprint));
    p.effects.push(Effect::Checkpoint);
    Ok(p)
}

fn acme_key_free(ctx: &Context<'_>, thumbprint: &str) -> Result<()> {
    if ctx.claims.acme_keys.contains(thumbprint)
        || ctx.registry.acme_account_by_key(thumbprint)?.is_some()
    {
        return Err(Refusal::AcmeKeyTaken.into());
    }
    Ok(())
}

/// Key rollover by the account itself; deactivation by the account or an operator.
fn acme_change_plan(
    ctx: &Context<'_>,
    actor: &Actor,
    actor_name: &str,
    c: &credmint_ledger::event::AcmeAccountChanged,
) -> Result<Plan> {
    use credmint_ledger::event::AcmeAccountChange;
    let by_itself = matches!(actor, Actor::Acme { account, .. } if *account == c.account);
    let by_operator = matches!(actor, Actor::Operator { .. });
    let allowed = match &c.change {
        AcmeAccountChange::KeyChanged { .. } => by_itself,
        AcmeAccountChange::Deactivated => by_itself || by_operator,
    };
    if !allowed {
        return Err(Refusal::Invalid("not this account's change to make".into()).into());
    }
    match actor {
        Actor::Acme { key, .. } => drop(acme_account_valid(ctx, &c.account, key)?),
        _ => {
            let live = ctx
                .registry
                .acme_account(&c.account)?
                .is_some_and(|r| !r.deactivated);
            if !live || ctx.claims.acme_accounts.contains(&c.account) {
                return Err(Refusal::AcmeAccountGone(c.account.clone()).into());
            }
        }
    }
    let mut p = Plan::new(Outcome::Appended);
    if let AcmeAccountChange::KeyChanged { jwk } = &c.change {
        let thumbprint = credmint_ledger::event::account_id(jwk);
        acme_key_free(ctx, &thumbprint)?;
        p.claims.push(Claim::AcmeKey(thumbprint));
    }
    p.push(actor_name, Event::AcmeAccountChanged(c.clone()), ctx.now_ms);
    p.claims.push(Claim::AcmeAccount(c.account.clone()));
    p.effects.push(Effect::Checkpoint);
    Ok(p)
}

fn operator_name_free(ctx: &Context<'_>, name: &str) -> Result<()> {
    if ctx.claims.operators.contains(name) || ctx.registry.operator_exists(name)? {
        return Err(Refusal::OperatorNameTaken(name.to_string()).into());
    }
    Ok(())
}

/// Dual control's independence rule (`credmint_ledger::governance::may_approve`, the
/// same function the auditor replays): the approver is neither the requester nor minted
/// by, or on a request chain of, the requester.
fn independent(ctx: &Context<'_>, approver: &str, requester: &str) -> Result<()> {
    let failure = std::cell::RefCell::new(None);
    let verdict = may_approve(approver, requester, |name| {
        ctx.registry.operator_lineage(name).unwrap_or_else(|e| {
            *failure.borrow_mut() = Some(e);
            None
        })
    });
    if let Some(e) = failure.into_inner() {
        return Err(e.into());
    }
    verdict.map_err(|refusal| {
        Refusal::SelfApproval(format!(
            "approval refused: {refusal}; a different, independent operator must approve"
        ))
        .into()
    })
}

/// The integration may receive a credential now: active, within review-by, not changed
/// earlier in this batch, and not in the middle of a revoke-all (a suspension is never
/// followed by a credential it missed).
fn standing(ctx: &Context<'_>, name: &str) -> Result<IntegrationSpec> {
    let spec = ctx
        .registry
        .integration(name)?
        .ok_or_else(|| Refusal::UnknownIntegration(name.to_string()))?;
    if spec.status != IntegrationStatus::Active
        || ctx.now() > spec.review_by
        || ctx.claims.changed.contains(name)
        || ctx.revoking.contains(name)
    {
        return Err(Refusal::NotIssuable(name.to_string()).into());
    }
    Ok(spec)
}

/// [`standing`], and the issuance's [`Basis`] still holds: same integration state as
/// when it was decided, signed by the key in force for `role`. Returns its class.
fn issuable(ctx: &Context<'_>, name: &str, basis: &Basis, role: KeyRole) -> Result<Class> {
    let spec = standing(ctx, name)?;
    if spec_hash(&spec) != basis.spec {
        return Err(Refusal::Stale(name.to_string()).into());
    }
    let in_force = ctx
        .keys_in_force
        .iter()
        .any(|k| k.role == role && k.spki_der == basis.signer_spki);
    if !in_force || ctx.claims.rotated.contains(&role_slot(role)) {
        return Err(Refusal::KeyRotated.into());
    }
    Ok(spec.privilege_class.into())
}

/// The class an integration's credentials are counted under (routine if it is unknown).
fn class_of(ctx: &Context<'_>, integration: &str) -> Result<Class> {
    Ok(ctx
        .registry
        .integration(integration)?
        .map_or(Class::Routine, |s| s.privilege_class.into()))
}

fn role_slot(role: KeyRole) -> u8 {
    match role {
        KeyRole::Ca => 0,
        KeyRole::Token => 1,
        KeyRole::Ledger => 2,
    }
}

/// The signal input of an issuance: the integration's previous activity as of just
/// before this command (an earlier issuance in the same batch counts).
fn issued_effect(
    ctx: &Context<'_>,
    integration: &str,
    peer: Option<std::net::IpAddr>,
) -> Result<Effect> {
    let previous_activity = if ctx.claims.issued_for.contains(integration) {
        Some(ctx.now())
    } else {
        match ctx.registry.activity(integration)? {
            Some(a) => Some(a.last_issuance),
            None => ctx
                .registry
                .integration_times(integration)?
                .map(|(registered, _)| registered),
        }
    };
    Ok(Effect::Issued {
        integration: integration.to_string(),
        peer,
        previous_activity,
    })
}

fn spend_enrollment(ctx: &Context<'_>, hash: &[u8; 32], integration: &str) -> Result<()> {
    let row = ctx
        .registry
        .enrollment(hash)?
        .ok_or(Refusal::EnrollmentSpent)?;
    if row.used_at.is_some()
        || ctx.claims.enrollments.contains(hash)
        || row.integration != integration
    {
        return Err(Refusal::EnrollmentSpent.into());
    }
    if ctx.now() > row.expires_at {
        return Err(Refusal::EnrollmentExpired.into());
    }
    Ok(())
}

fn revoke_one(ctx: &Context<'_>, actor: &str, target: &Target, reason: u8) -> Result<Plan> {
    let unknown = || Refusal::UnknownCredential(target.to_string());
    let (existing, claimed, owner, superseded) = match target {
        Target::Certificate(serial) => {
            let row = ctx.registry.certificate(serial)?.ok_or_else(unknown)?;
            let owner = (row.kind == CredentialKind::Workload).then_some(row.owner);
            let claimed = ctx.claims.revoked_serials.get(serial).copied();
            let superseded = row.revoked_index.is_some() && row.reason == SUPERSEDED;
            (row.revoked_index, claimed, owner, superseded)
        }
        Target::Token(jti) => {
            let row = ctx.registry.token(jti)?.ok_or_else(unknown)?;
            let claimed = ctx.claims.revoked_jtis.get(jti).copied();
            (row.revoked_index, claimed, Some(row.integration), false)
        }
    };
    // A certificate revoked as superseded may still renew (`Slack`); revoking it again
    // with another reason ends that (FORMAT.md §13.2 allows this one second record).
    let upgrade = superseded && reason != SUPERSEDED && claimed.is_none();
    if let Some(index) = existing.or(claimed).filter(|_| !upgrade) {
        return Ok(Plan::new(Outcome::AlreadyRevoked { index }));
    }
    let class = match owner {
        Some(integration) => class_of(ctx, &integration)?,
        None => Class::Operator,
    };
    let mut p = Plan::new(Outcome::Appended);
    push_revocation(&mut p, actor, target.clone(), reason, ctx.now_ms, class);
    p.effects.push(Effect::Checkpoint);
    Ok(p)
}

/// Adds the revocation of `target` (a credential of `class`) to `p`, with its claim, its
/// tally and (for a certificate) the cache invalidation.
fn push_revocation(
    p: &mut Plan,
    actor: &str,
    target: Target,
    reason: u8,
    now_ms: u64,
    class: Class,
) {
    let at = p.entries.len();
    let what = match target {
        Target::Certificate(_) => Tallied::CertificateRevoked,
        Target::Token(_) => Tallied::TokenRevoked,
    };
    p.effects.push(Effect::Tally(what, class));
    match target {
        Target::Certificate(serial) => {
            let event = Event::Revoked(Revoked {
                serial: serial.clone(),
                reason,
            });
            p.push(actor, event, now_ms);
            p.effects.push(Effect::Revoked(serial.clone()));
            p.claims.push(Claim::RevokedSerial(serial, at));
        }
        Target::Token(jti) => {
            let event = Event::TokenRevoked(TokenRevoked {
                jti: jti.clone(),
                reason,
            });
            p.push(actor, event, now_ms);
            p.effects.push(Effect::TokenRevoked(jti.clone()));
            p.claims.push(Claim::RevokedJti(jti, at));
        }
    }
}

/// Adds revocations of up to [`REVOKE_CHUNK`] live credentials of `integration` to `p`
/// and says whether more remain (also when this batch issued it something the
/// committed index cannot show yet).
fn revoke_live(
    ctx: &Context<'_>,
    actor: &str,
    integration: &str,
    reason: u8,
    p: &mut Plan,
) -> Result<()> {
    let live = ctx
        .registry
        .live(integration, ctx.now(), REVOKE_CHUNK + 1)?;
    let more = live.len() > REVOKE_CHUNK;
    let class = class_of(ctx, integration)?;
    let (mut certificates, mut tokens) = (0, 0);
    for credential in live.into_iter().take(REVOKE_CHUNK) {
        let target = match credential {
            LiveCredential::Certificate(serial) => {
                // Revoked as superseded (kept live: it may still renew): revoked again
                // with this reason ends that; with superseded once more, nothing to do.
                let row = ctx.registry.certificate(&serial)?;
                if row.is_some_and(|r| r.revoked_index.is_some()) && reason == SUPERSEDED {
                    continue;
                }
                Target::Certificate(serial)
            }
            LiveCredential::Token(jti) => Target::Token(jti),
        };
        let already = match &target {
            Target::Certificate(serial) => ctx.claims.revoked_serials.contains_key(serial),
            Target::Token(jti) => ctx.claims.revoked_jtis.contains_key(jti),
        };
        if already {
            continue;
        }
        match target {
            Target::Certificate(_) => certificates += 1,
            Target::Token(_) => tokens += 1,
        }
        push_revocation(p, actor, target, reason, ctx.now_ms, class);
    }
    p.more = more || ctx.claims.issued_for.contains(integration);
    if p.more {
        // Nothing is issued to it until the last chunk is in (see `Context::revoking`).
        p.claims.push(Claim::Changed(integration.to_string()));
    }
    if let Outcome::Revoked {
        certificates: c,
        tokens: t,
    } = &mut p.outcome
    {
        *c += certificates;
        *t += tokens;
    }
    p.effects.push(Effect::Checkpoint);
    Ok(())
}

/// The current spec of `integration`, if it is still exactly the state `base` names.
fn unchanged(ctx: &Context<'_>, integration: &str, base: [u8; 32]) -> Result<IntegrationSpec> {
    let spec = ctx
        .registry
        .integration(integration)?
        .ok_or_else(|| Refusal::UnknownIntegration(integration.to_string()))?;
    if spec.status == IntegrationStatus::Decommissioned {
        return Err(Refusal::Decommissioned(integration.to_string()).into());
    }
    if spec_hash(&spec) != base || ctx.claims.changed.contains(integration) {
        return Err(Refusal::Stale(integration.to_string()).into());
    }
    Ok(spec)
}

fn change_plan(
    ctx: &Context<'_>,
    actor_name: &str,
    actor: &Actor,
    integration: &str,
    base: [u8; 32],
    change: &Change,
) -> Result<Plan> {
    let current = unchanged(ctx, integration, base)?;
    let mut p = Plan::new(Outcome::Appended);
    match change {
        Change::Apply(events) => {
            for e in events {
                if matches!(
                    e.kind,
                    ChangeKind::IncreaseApproved | ChangeKind::Decommissioned
                ) || e.spec.name != integration
                {
                    return Err(Refusal::Invalid(format!(
                        "{:?} is not a change that applies at once",
                        e.kind
                    ))
                    .into());
                }
                p.push(actor_name, Event::IntegrationChanged(e.clone()), ctx.now_ms);
            }
            p.claims.push(Claim::Changed(integration.to_string()));
        }
        Change::Request(request) => {
            if request.proposed.name != integration {
                return Err(Refusal::Invalid("request names another integration".into()).into());
            }
            p.push(
                actor_name,
                Event::ChangeRequested((**request).clone()),
                ctx.now_ms,
            );
        }
        Change::Approve {
            request_index,
            reference,
        } => {
            let request = ctx
                .registry
                .pending_change(*request_index)?
                .filter(|r| r.integration == integration)
                .ok_or(Refusal::NotPending(*request_index))?;
            if ctx.claims.approved.contains(request_index) {
                return Err(Refusal::NotPending(*request_index).into());
            }
            if request.base_hash != base {
                return Err(Refusal::Stale(integration.to_string()).into());
            }
            if request.requester == actor_name {
                return Err(Refusal::SelfApproval(format!(
                    "self-approval is refused: change request {request_index} was made by {}; a different operator must approve it",
                    request.requester
                ))
                .into());
            }
            let (Actor::Operator { name: approver, .. }, Some(requester)) =
                (actor, request.requester.strip_prefix("operator:"))
            else {
                return Err(
                    Refusal::Invalid("only operators request and approve changes".into()).into(),
                );
            };
            independent(ctx, approver, requester)?;
            p.push(
                actor_name,
                Event::IntegrationChanged(IntegrationChanged {
                    kind: ChangeKind::IncreaseApproved,
                    spec: request.proposed.clone(),
                    reference: reference.clone(),
                    request_index: *request_index,
                }),
                ctx.now_ms,
            );
            if let Some(why) = increases_authority(&current, &request.proposed) {
                let detail = format!(
                    "{why}: request {request_index} by {} approved by {actor_name} ({reference})",
                    request.requester
                );
                p.push(
                    SIGNALS,
                    Event::AnomalyFlagged(AnomalyFlagged {
                        integration: integration.to_string(),
                        kind: AnomalyKind::PrivilegeExpansion,
                        detail,
                        auto_suspended: false,
                    }),
                    ctx.now_ms,
                );
                p.effects.push(Effect::Flagged {
                    kind: AnomalyKind::PrivilegeExpansion,
                    auto_suspended: false,
                });
            }
            p.claims.push(Claim::Approved(*request_index));
            p.claims.push(Claim::Changed(integration.to_string()));
        }
        Change::Decommission { reason } => {
            let mut after = current.clone();
            after.status = IntegrationStatus::Decommissioned;
            p.outcome = Outcome::Revoked {
                certificates: 0,
                tokens: 0,
            };
            p.push(
                actor_name,
                Event::IntegrationChanged(IntegrationChanged {
                    kind: ChangeKind::Decommissioned,
                    spec: after,
                    reference: reason.clone(),
                    request_index: 0,
                }),
                ctx.now_ms,
            );
            revoke_live(ctx, actor_name, integration, CESSATION_OF_OPERATION, &mut p)?;
            p.claims.push(Claim::Changed(integration.to_string()));
        }
    }
    p.effects.push(Effect::Checkpoint);
    Ok(p)
}

fn anomaly(
    ctx: &Context<'_>,
    actor: &str,
    mut flagged: AnomalyFlagged,
    auto_suspend: bool,
) -> Result<Plan> {
    let mut p = Plan::new(Outcome::Appended);
    let suspend = if auto_suspend && !ctx.claims.changed.contains(&flagged.integration) {
        ctx.registry.integration(&flagged.integration)?.filter(|s| {
            s.privilege_class == PrivilegeClass::Privileged && s.status == IntegrationStatus::Active
        })
    } else {
        None
    };
    flagged.auto_suspended = suspend.is_some();
    let (kind, auto) = (flagged.kind, flagged.auto_suspended);
    let reference = format!("automatic suspension: {}", flagged.detail);
    let integration = flagged.integration.clone();
    p.push(actor, Event::AnomalyFlagged(flagged), ctx.now_ms);
    if let Some(mut spec) = suspend {
        spec.status = IntegrationStatus::Suspended;
        p.push(
            actor,
            Event::IntegrationChanged(IntegrationChanged {
                kind: ChangeKind::Suspended,
                spec,
                reference,
                request_index: 0,
            }),
            ctx.now_ms,
        );
        p.claims.push(Claim::Changed(integration));
        p.effects.push(Effect::Checkpoint);
    }
    p.effects.push(Effect::Flagged {
        kind,
        auto_suspended: auto,
    });
    Ok(p)
}
