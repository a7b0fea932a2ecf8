//! What callers may ask the sequencer for: typed commands, never loose events. Each
//! command names its actor (with the credential that authenticated it) and its intent;
//! the sequencer derives the events and the checks from the committed state.

use std::fmt;
use std::net::IpAddr;

use credmint_ledger::event::{
    AcmeAccountChanged, AcmeAccountCreated, AcmeEabCreated, AnomalyFlagged, CertificateIssued,
    ChangeRequested, EnrollmentCreated, IntegrationChanged, IntegrationSpec, KeyRotated,
    MonitorTokenCreated, OperatorApproved, OperatorCertIssued, OperatorRequested, ReuseDetected,
    TokenIssued,
};
use credmint_ledger::Record;

/// Who causes a command, and the credential they authenticated with. The sequencer
/// re-checks that credential at commit time, so an actor revoked while a request is in
/// flight commits nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator, by name and the serial of the certificate it presented.
    Operator { name: String, serial: Vec<u8> },
    /// A workload of `integration`, by the serial of the certificate it presented.
    Workload {
        integration: String,
        serial: Vec<u8>,
        /// How far past revocation or expiry that certificate may still act (renewal only).
        slack: Slack,
    },
    /// A workload enrolling with a one-time token (the token is checked by the command).
    Enrollment { integration: String },
    /// An ACME account (RFC 8555), by its id; it is bound to one integration for life, and
    /// the sequencer re-checks at commit time that it is still valid.
    Acme {
        account: String,
        /// RFC 7638 thumbprint of the key the request was signed with: it must still be
        /// the account's key at commit time (a rollover in between wins).
        key: String,
    },
    /// Whoever proved possession of a certificate's private key (RFC 8555 §7.6 revocation
    /// signed with the certificate's key), by the certificate's serial.
    AcmeKey { serial: Vec<u8> },
    /// The appliance itself (`system:<role>`): signals, recovery.
    System(&'static str),
}

impl Actor {
    /// The ledger's actor string (FORMAT.md §13.1).
    pub fn ledger_name(&self) -> String {
        match self {
            Actor::Operator { name, .. } => format!("operator:{name}"),
            Actor::Workload { integration, .. } => format!("workload:{integration}"),
            Actor::Enrollment { integration } => format!("enrollment:{integration}"),
            Actor::Acme { account, .. } => format!("acme:{account}"),
            Actor::AcmeKey { serial } => format!("acme-key:{}", hex::encode(serial)),
            Actor::System(role) => format!("system:{role}"),
        }
    }

    /// The certificate that must still be live when the command commits.
    pub fn credential(&self) -> Option<&[u8]> {
        match self {
            Actor::Operator { serial, .. } | Actor::Workload { serial, .. } => Some(serial),
            Actor::Enrollment { .. }
            | Actor::Acme { .. }
            | Actor::AcmeKey { .. }
            | Actor::System(_) => None,
        }
    }
}

/// What a workload certificate may still do once it is no longer plainly live. Only a
/// renewal gets any: a certificate revoked as `superseded` (RFC 5280: no suspicion on the
/// key, the operator asks for a new certificate) may renew, and an expired one may renew
/// for `[ttl] renew_after_expiry_secs` (0 by default), so an agent that outlived an
/// outage recovers without a new enrollment token. Tokens and revocations get none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slack {
    pub superseded: bool,
    pub after_expiry_secs: u64,
}

impl Slack {
    /// Whether a certificate revoked for `reason` (RFC 5280 code) may still act.
    pub fn forgives_revocation(&self, reason: u8) -> bool {
        self.superseded && reason == crate::revoke::SUPERSEDED
    }

    /// Whether a certificate valid until `not_after` may still act at `now`.
    pub fn covers(&self, not_after: u64, now: u64) -> bool {
        now <= not_after.saturating_add(self.after_expiry_secs)
    }
}

/// One credential to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Certificate(Vec<u8>),
    Token(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Certificate(serial) => {
                write!(f, "certificate with serial {}", hex::encode(serial))
            }
            Target::Token(jti) => write!(f, "token with jti {jti:?}"),
        }
    }
}

/// A change of one integration, decided against the state whose SHA-256 the command
/// carries (`base`): if anything changed the integration since, the command is stale.
#[derive(Debug, Clone)]
pub enum Change {
    /// Changes that need no second operator, recorded in order (narrowing, owner change,
    /// suspend, resume, recertify). Never `IncreaseApproved` or `Decommissioned`.
    Apply(Vec<IntegrationChanged>),
    /// An increase of authority, pending until a different operator approves it.
    Request(Box<ChangeRequested>),
    /// Approves the pending request at ledger index `request_index`.
    Approve {
        request_index: u64,
        reference: String,
    },
    /// Retires the integration and revokes every live credential (reason
    /// cessationOfOperation), in bounded chunks, before the caller is answered.
    Decommission { reason: String },
}

/// What an issuance was decided and signed on. It commits only if both still hold: the
/// integration is exactly the state the grant was decided from (a narrowing committed
/// in between makes it stale), and the key that signed it is still the key in force for
/// its role (a credential signed by a key rotated away in between is never handed out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis {
    /// `spec_hash` of the integration state the grant was decided from.
    pub spec: [u8; 32],
    /// SubjectPublicKeyInfo DER of the signing key (CA for certificates, token key for JWTs).
    pub signer_spki: Vec<u8>,
}

/// Runs once, on the sequencer thread, after a key rotation committed and before its
/// caller is answered: swaps the live keys (argument: the commit time, unix seconds).
pub struct KeySwap(pub Box<dyn FnOnce(u64) -> Result<(), String> + Send>);

impl fmt::Debug for KeySwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySwap(..)")
    }
}

/// What to sequence.
#[derive(Debug)]
pub enum Op {
    /// A workload certificate; `enrollment` is the SHA-256 of the one-time token it spends.
    IssueCertificate {
        cert: CertificateIssued,
        enrollment: Option<[u8; 32]>,
        basis: Basis,
        peer: Option<IpAddr>,
    },
    IssueToken {
        token: TokenIssued,
        basis: Basis,
        peer: Option<IpAddr>,
    },
    /// An operator certificate: only the actor's own renewal (same name).
    OperatorCertificate(OperatorCertIssued),
    /// Asks for a new operator; nothing is issued until a second operator approves.
    RequestOperator(OperatorRequested),
    /// Approves a pending operator request and records the certificate signed for it.
    ApproveOperator(OperatorApproved),
    Register(IntegrationSpec),
    CreateEnrollment(EnrollmentCreated),
    /// Grants a read-only monitoring token; refused while the name has a live grant.
    GrantMonitor(MonitorTokenCreated),
    /// Withdraws the live monitoring grant named so.
    WithdrawMonitor {
        name: String,
    },
    /// Revokes one credential; already revoked is an outcome, not an error.
    Revoke {
        target: Target,
        reason: u8,
    },
    /// Revokes every live credential of an integration (chunked like decommissioning).
    RevokeIntegration {
        integration: String,
        reason: u8,
    },
    Change {
        integration: String,
        base: [u8; 32],
        change: Change,
    },
    RotateKey {
        event: KeyRotated,
        swap: KeySwap,
    },
    Reuse(ReuseDetected),
    /// An operator hands an integration an ACME External Account Binding key.
    CreateAcmeEab(AcmeEabCreated),
    /// A new ACME account spends its EAB key (actor: the account itself).
    CreateAcmeAccount(AcmeAccountCreated),
    /// Key rollover (by the account) or deactivation (by the account or an operator).
    ChangeAcmeAccount(AcmeAccountChanged),
    /// An anomaly finding; with `auto_suspend`, a privileged, active integration is also
    /// suspended in the same batch (decided against the state at commit).
    Anomaly {
        flagged: AnomalyFlagged,
        auto_suspend: bool,
    },
    /// Writes nothing. Answered once every command answered before it was submitted,
    /// and the signal events those caused, is committed (a "flush now" for tools and
    /// tests that must not sleep).
    Barrier,
}

/// A command: who, and what.
#[derive(Debug)]
pub struct Command {
    pub actor: Actor,
    pub op: Op,
}

impl Command {
    pub fn new(actor: Actor, op: Op) -> Command {
        Command { actor, op }
    }
}

/// Why the sequencer refused a command. Nothing of a refused command is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("enrollment token already used or unknown")]
    EnrollmentSpent,
    #[error("enrollment token expired")]
    EnrollmentExpired,
    #[error("serial collision")]
    SerialTaken,
    #[error("token id collision")]
    JtiTaken,
    #[error("an integration named {0:?} already exists")]
    NameTaken(String),
    #[error("a live monitoring token named {0:?} exists; withdraw it first")]
    MonitorNameTaken(String),
    #[error("no live monitoring token named {0:?}")]
    UnknownMonitor(String),
    #[error("no integration named {0:?}")]
    UnknownIntegration(String),
    #[error("integration {0:?} is not active or its review is overdue")]
    NotIssuable(String),
    #[error("the presenting certificate was revoked")]
    ActorRevoked,
    /// Signed by a key that a committed rotation replaced; retry.
    #[error("the signing key was rotated while the request was in flight; retry")]
    KeyRotated,
    #[error("the presenting certificate has expired")]
    ActorExpired,
    #[error("the presenting certificate is unknown to the ledger")]
    ActorUnknown,
    #[error(
        "an operator named {0:?} already exists; only that operator may renew its certificate"
    )]
    OperatorNameTaken(String),
    #[error("no {0}")]
    UnknownCredential(String),
    #[error("integration {0:?} changed concurrently; retry")]
    Stale(String),
    #[error("integration {0:?} is decommissioned")]
    Decommissioned(String),
    #[error("change request {0} is no longer pending")]
    NotPending(u64),
    #[error("{0}")]
    SelfApproval(String),
    #[error("{0}")]
    AcmeEab(&'static str),
    #[error("ACME account {0:?} is unknown or deactivated")]
    AcmeAccountGone(String),
    #[error("this key already belongs to an ACME account")]
    AcmeKeyTaken,
    /// The account's key changed (or the account changed) while the request was in flight.
    #[error("the ACME account's key changed while the request was in flight")]
    AcmeKeyChanged,
    /// The command would write a field the ledger format does not allow (length, text).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Why a command did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("sequencer queue is full")]
    QueueFull,
    #[error("sequencer is shut down")]
    Closed,
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Reading committed state or writing the batch failed; nothing was committed.
    #[error("ledger storage: {0}")]
    Storage(String),
}

/// What a committed command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its events were appended (`Receipt::records`).
    Appended,
    /// Nothing to write: the credential was already revoked at this ledger index.
    AlreadyRevoked { index: u64 },
    /// Nothing to write: the integration is already in the requested state.
    Unchanged,
    /// Revoke-all or decommissioning: how many credentials were revoked.
    Revoked { certificates: usize, tokens: usize },
}

/// The answer to a committed command: its records (durable) and outcome.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub records: Vec<Record>,
    pub outcome: Outcome,
}

impl Outcome {
    /// (certificates, tokens) a revoke-all or decommissioning revoked; (0, 0) otherwise.
    pub fn revoked_counts(&self) -> (usize, usize) {
        match self {
            Outcome::Revoked {
                certificates,
                tokens,
            } => (*certificates, *tokens),
            _ => (0, 0),
        }
    }
}

impl Receipt {
    /// Index of the command's first record (or of the existing revocation).
    pub fn first_index(&self) -> Option<u64> {
        match self.outcome {
            Outcome::AlreadyRevoked { index } => Some(index),
            _ => self.records.first().map(|r| r.index),
        }
    }

    pub fn last_index(&self) -> Option<u64> {
        self.records.last().map(|r| r.index)
    }
}
