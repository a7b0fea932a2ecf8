//! Group commit: one thread owns appends. Requests queue here; the thread takes every
//! queued submission (up to a batch limit), checks each one's preconditions against the
//! committed state plus the batch so far, appends the survivors and updates the
//! projections in ONE redb write transaction (one fsync), and only then answers each
//! caller. A credential is handed out only after its event is durable.
//!
//! The queue is bounded: when it is full, callers get `QueueFull` at once and the API
//! answers 503 with Retry-After instead of piling up work.

use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use credmint_ledger::event::{Event, IntegrationStatus};
use credmint_ledger::{AppendError, Ledger, NewEntry, Record};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::registry::{apply, ProjectionError, Registry};

/// Most submissions folded into one transaction.
const MAX_BATCH: usize = 2048;

/// A condition checked by the writer immediately before the append, against the latest
/// committed state and the rest of the batch, so races between requests are decided in
/// one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// The enrollment token with this hash exists, is unexpired at append time and unused.
    EnrollmentUnused([u8; 32]),
    /// No certificate with this serial exists yet.
    SerialUnused(Vec<u8>),
    /// No token with this jti exists yet.
    JtiUnused(String),
    /// No integration with this name exists yet.
    IntegrationNameFree(String),
    /// The certificate with this serial exists and is not revoked.
    CertificateNotRevoked(Vec<u8>),
    /// The token exists and is not revoked.
    TokenNotRevoked(String),
    /// The certificate authenticating this request still exists, unrevoked (also not by
    /// an earlier submission of the same batch). Claims nothing: many requests may rely on
    /// the same certificate, but none may win a race against its revocation.
    CertificateLive(Vec<u8>),
    /// No operator of this name exists (operators cannot mint identities that act under
    /// another operator's name).
    OperatorNameFree(String),
    /// The integration still has exactly the state (SHA-256 of its spec bytes) the caller
    /// based its change on: concurrent changes cannot silently overwrite each other.
    IntegrationUnchanged(String, [u8; 32]),
    /// `integration` has issued exactly this many credentials (projection count) and no
    /// earlier submission of the batch issues one: nothing was issued since the caller
    /// looked (decommissioning revokes exactly what it saw).
    IssuedCount(String, u64),
    /// The change request at this ledger index is still pending (not approved, not
    /// superseded), and no earlier submission of the batch approves it.
    ChangePending(u64),
}

/// Why the writer refused a submission.
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
    #[error("already revoked")]
    AlreadyRevoked,
    #[error("the presenting certificate was revoked")]
    CredentialRevoked,
    #[error(
        "an operator named {0:?} already exists; only that operator may renew its certificate"
    )]
    OperatorNameTaken(String),
    #[error("no such credential")]
    Unknown,
    #[error("integration {0:?} changed concurrently; retry")]
    Stale(String),
    #[error("change request {0} is no longer pending")]
    NotPending(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("ledger writer queue is full")]
    QueueFull,
    #[error("ledger writer is shut down")]
    Closed,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("ledger append failed: {0}")]
    Storage(String),
}

/// Events to append together, with their actor and preconditions.
#[derive(Debug, Clone)]
pub struct Submission {
    pub actor: String,
    pub events: Vec<Event>,
    pub preconditions: Vec<Precondition>,
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Vec<Record>, WriteError>>,
}

/// Handle for submitting appends; cheap to clone.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: SyncSender<Job>,
}

impl LedgerWriter {
    /// Starts the writer thread. It stops once every handle is dropped and the queue drained.
    pub fn start(
        ledger: Arc<Ledger>,
        clock: Clock,
        capacity: usize,
    ) -> (LedgerWriter, JoinHandle<()>) {
        let (tx, rx) = sync_channel(capacity);
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || run(&ledger, &clock, rx))
            .unwrap_or_else(|e| panic!("cannot spawn the ledger writer thread: {e}"));
        (LedgerWriter { tx }, thread)
    }

    /// Appends `submission` durably, or says why not. Never blocks the async runtime.
    pub async fn submit(&self, submission: Submission) -> Result<Vec<Record>, WriteError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Job { submission, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(WriteError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(WriteError::Closed),
        }
        rx.await.map_err(|_| WriteError::Closed)?
    }
}

fn run(ledger: &Ledger, clock: &Clock, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_batch(ledger, clock, jobs);
    }
}

/// Remembers what earlier submissions of the same batch claimed.
#[derive(Default)]
struct BatchClaims {
    enrollments: HashSet<[u8; 32]>,
    serials: HashSet<Vec<u8>>,
    jtis: HashSet<String>,
    names: HashSet<String>,
    revoked_serials: HashSet<Vec<u8>>,
    revoked_jtis: HashSet<String>,
    operators: HashSet<String>,
    changes: HashSet<u64>,
    /// Integrations receiving a credential in this batch.
    issued_for: HashSet<String>,
}

fn commit_batch(ledger: &Ledger, clock: &Clock, jobs: Vec<Job>) {
    // Entries carry one timestamp per batch, never below the ledger head's (the ledger
    // refuses time going backwards).
    let now_ms = clock.unix_ms().max(ledger.head_timestamp_ms());
    let mut claims = BatchClaims::default();
    let mut accepted = Vec::with_capacity(jobs.len());
    // The writer is the only writer, so this snapshot is the latest committed state.
    let registry = match Registry::open(ledger.database()) {
        Ok(r) => r,
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(WriteError::Storage(e.to_string())));
            }
            return;
        }
    };
    for job in jobs {
        match check(&registry, &job.submission, now_ms / 1000, &mut claims) {
            Ok(()) => accepted.push(job),
            Err(refusal) => {
                let _ = job.reply.send(Err(WriteError::Refused(refusal)));
            }
        }
    }
    drop(registry);
    if accepted.is_empty() {
        return;
    }
    let entries: Vec<NewEntry> = accepted
        .iter()
        .flat_map(|job| {
            job.submission.events.iter().map(|event| NewEntry {
                timestamp_ms: now_ms,
                actor: job.submission.actor.clone(),
                event: event.clone(),
            })
        })
        .collect();
    match ledger.append_batch_with(entries, apply) {
        Ok(records) => {
            let mut records = records.into_iter();
            for job in accepted {
                let mine: Vec<Record> =
                    records.by_ref().take(job.submission.events.len()).collect();
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            let message = describe(&e);
            tracing::error!(error = %message, "ledger append failed; batch not committed");
            for job in accepted {
                let _ = job.reply.send(Err(WriteError::Storage(message.clone())));
            }
        }
    }
}

fn describe(e: &AppendError<ProjectionError>) -> String {
    e.to_string()
}

/// Integrations that `events` issue credentials to.
fn issued_integrations(events: &[Event]) -> impl Iterator<Item = &str> {
    events.iter().filter_map(|e| match e {
        Event::CertificateIssued(c) => Some(c.integration.as_str()),
        Event::TokenIssued(t) => Some(t.integration.as_str()),
        _ => None,
    })
}

fn check(
    registry: &Registry,
    submission: &Submission,
    now: u64,
    claims: &mut BatchClaims,
) -> Result<(), Refusal> {
    let storage_unknown = |_| Refusal::Unknown;
    let preconditions = &submission.preconditions;
    // Every issuance, whatever its caller checked: the integration is still active and
    // within review-by at append time, and not changed earlier in this batch (so a
    // suspension or decommissioning can never be followed by a credential it missed).
    for name in issued_integrations(&submission.events) {
        let spec = registry.integration(name).map_err(storage_unknown)?;
        let issuable =
            spec.is_some_and(|s| s.status == IntegrationStatus::Active && now <= s.review_by);
        if !issuable || claims.names.contains(name) {
            return Err(Refusal::Stale(name.to_string()));
        }
    }
    for p in preconditions {
        match p {
            Precondition::EnrollmentUnused(hash) => {
                let row = registry
                    .enrollment(hash)
                    .map_err(storage_unknown)?
                    .ok_or(Refusal::EnrollmentSpent)?;
                if row.used_at.is_some() || claims.enrollments.contains(hash) {
                    return Err(Refusal::EnrollmentSpent);
                }
                if now > row.expires_at {
                    return Err(Refusal::EnrollmentExpired);
                }
            }
            Precondition::SerialUnused(serial) => {
                if claims.serials.contains(serial)
                    || registry
                        .certificate(serial)
                        .map_err(storage_unknown)?
                        .is_some()
                {
                    return Err(Refusal::SerialTaken);
                }
            }
            Precondition::JtiUnused(jti) => {
                if claims.jtis.contains(jti)
                    || registry.token(jti).map_err(storage_unknown)?.is_some()
                {
                    return Err(Refusal::JtiTaken);
                }
            }
            Precondition::IntegrationNameFree(name) => {
                if claims.names.contains(name)
                    || registry
                        .integration(name)
                        .map_err(storage_unknown)?
                        .is_some()
                {
                    return Err(Refusal::NameTaken(name.clone()));
                }
            }
            Precondition::CertificateNotRevoked(serial) => {
                let row = registry
                    .certificate(serial)
                    .map_err(storage_unknown)?
                    .ok_or(Refusal::Unknown)?;
                if row.revoked_index.is_some() || claims.revoked_serials.contains(serial) {
                    return Err(Refusal::AlreadyRevoked);
                }
            }
            Precondition::CertificateLive(serial) => {
                let row = registry
                    .certificate(serial)
                    .map_err(storage_unknown)?
                    .ok_or(Refusal::Unknown)?;
                if row.revoked_index.is_some() || claims.revoked_serials.contains(serial) {
                    return Err(Refusal::CredentialRevoked);
                }
            }
            Precondition::OperatorNameFree(name) => {
                if claims.operators.contains(name)
                    || registry.operator_exists(name).map_err(storage_unknown)?
                {
                    return Err(Refusal::OperatorNameTaken(name.clone()));
                }
            }
            Precondition::TokenNotRevoked(jti) => {
                let row = registry
                    .token(jti)
                    .map_err(storage_unknown)?
                    .ok_or(Refusal::Unknown)?;
                if row.revoked_index.is_some() || claims.revoked_jtis.contains(jti) {
                    return Err(Refusal::AlreadyRevoked);
                }
            }
            Precondition::IntegrationUnchanged(name, expected) => {
                let current = registry.integration(name).map_err(storage_unknown)?;
                let hash = current.map(|spec| spec_hash(&spec));
                if hash.as_ref() != Some(expected) || claims.names.contains(name) {
                    return Err(Refusal::Stale(name.clone()));
                }
            }
            Precondition::IssuedCount(name, expected) => {
                let issued = registry
                    .activity(name)
                    .map_err(storage_unknown)?
                    .map_or(0, |a| a.issued);
                if issued != *expected || claims.issued_for.contains(name) {
                    return Err(Refusal::Stale(name.clone()));
                }
            }
            Precondition::ChangePending(index) => {
                let pending = registry
                    .pending_change(*index)
                    .map_err(storage_unknown)?
                    .is_some();
                if !pending || claims.changes.contains(index) {
                    return Err(Refusal::NotPending(*index));
                }
            }
        }
    }
    // All conditions hold: claim them for the rest of the batch.
    for p in preconditions {
        match p {
            Precondition::EnrollmentUnused(h) => {
                claims.enrollments.insert(*h);
            }
            Precondition::SerialUnused(s) => {
                claims.serials.insert(s.clone());
            }
            Precondition::JtiUnused(j) => {
                claims.jtis.insert(j.clone());
            }
            Precondition::IntegrationNameFree(n) => {
                claims.names.insert(n.clone());
            }
            Precondition::CertificateNotRevoked(s) => {
                claims.revoked_serials.insert(s.clone());
            }
            Precondition::TokenNotRevoked(j) => {
                claims.revoked_jtis.insert(j.clone());
            }
            Precondition::CertificateLive(_) => {}
            Precondition::OperatorNameFree(n) => {
                claims.operators.insert(n.clone());
            }
            Precondition::IntegrationUnchanged(n, _) => {
                claims.names.insert(n.clone());
            }
            Precondition::ChangePending(i) => {
                claims.changes.insert(*i);
            }
            Precondition::IssuedCount(..) => {}
        }
    }
    for name in issued_integrations(&submission.events) {
        claims.issued_for.insert(name.to_string());
    }
    Ok(())
}

/// Identity of an integration's current state, for [`Precondition::IntegrationUnchanged`].
pub fn spec_hash(spec: &credmint_ledger::event::IntegrationSpec) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(spec.to_bytes()).into()
}
