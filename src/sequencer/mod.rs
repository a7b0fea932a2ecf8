//! The sequencer: the one thread that owns ledger commits and their effects.
//!
//! Callers send typed [`Command`]s, never loose events. The thread takes every queued
//! command (up to [`MAX_BATCH`]), decides each one alone against the committed state plus
//! the batch so far ([`plan`]: its events, its checks, its claims), so one bad command is
//! refused alone and never sinks the batch; appends the accepted ones and updates the
//! projections in ONE redb write transaction (one fsync); runs their after-commit
//! [`effects`] (cache invalidation, key swap, signals, checkpoint wake); and only then
//! answers each caller. A credential is handed out only after its event is durable, and
//! nothing a caller does after sending can separate a commit from its effects.
//!
//! The queue is bounded: when it is full, callers get [`SequenceError::QueueFull`] at once
//! (the API answers 503 with Retry-After), and [`Sequencer::has_room`] lets issuance
//! refuse before spending HSM time.

pub mod command;
pub mod effects;
pub mod plan;
mod store;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use credmint_ledger::event::IntegrationStatus;
use credmint_ledger::{NewEntry, Record};
use tokio::sync::oneshot;

pub use command::{
    Actor, Basis, Change, Command, KeySwap, Op, Outcome, Receipt, Refusal, SequenceError, Slack,
    Target,
};
pub use effects::{AfterCommit, Issued, NoEffects};
pub use plan::{spec_hash, CESSATION_OF_OPERATION, REVOKE_CHUNK, SIGNALS};
pub use store::{LedgerStore, Store};

use crate::clock::Clock;
use plan::{Claims, Context, Plan, PlanError};

/// How often an idle sequencer retries a store that failed.
const RECOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Most commands folded into one transaction.
pub const MAX_BATCH: usize = 2048;

type Reply = oneshot::Sender<Result<Receipt, SequenceError>>;

struct Job {
    command: Command,
    /// None for the sequencer's own follow-up commands (signal events).
    reply: Option<Reply>,
    /// A revoke-all continuing in a later transaction: what earlier chunks did.
    carried: Option<Receipt>,
    /// Failed attempts of this continuation (storage errors are retried, not dropped).
    attempts: u32,
}

/// Storage failures a chunked revocation's continuation survives before its caller is
/// told (its earlier chunks are durable; the rest is retried at the next start for a
/// decommissioning).
const CONTINUATION_ATTEMPTS: u32 = 5;

impl Job {
    fn new(command: Command, reply: Option<Reply>) -> Job {
        Job {
            command,
            reply,
            carried: None,
            attempts: 0,
        }
    }

    /// The integration a chunked revocation of this job is (or would be) revoking.
    fn revoking(&self) -> Option<&str> {
        match &self.command.op {
            Op::RevokeIntegration { integration, .. } => Some(integration),
            Op::Change {
                integration,
                change: Change::Decommission { .. },
                ..
            } => Some(integration),
            _ => None,
        }
    }
}

/// Handle for sequencing commands; cheap to clone.
#[derive(Clone)]
pub struct Sequencer {
    tx: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl Sequencer {
    /// Starts the sequencer thread. It stops once every handle is dropped and the queue
    /// is drained. Integrations left decommissioned with live credentials (a crash between
    /// revocation chunks) are finished first.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Clock,
        hooks: Arc<dyn AfterCommit>,
        capacity: usize,
    ) -> (Sequencer, JoinHandle<()>) {
        let capacity = capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || run(&*store, &clock, &*hooks, rx, &q))
            .unwrap_or_else(|e| panic!("cannot spawn the sequencer thread: {e}"));
        (
            Sequencer {
                tx,
                queued,
                capacity,
            },
            thread,
        )
    }

    /// Whether a command sent now would find room in the queue (a hint for admission:
    /// refuse before signing rather than after).
    pub fn has_room(&self) -> bool {
        self.queued() < self.capacity
    }

    /// Commands sent and not yet taken by the sequencer thread (queue depth).
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sequences `command` and waits for its commit and effects. Once this returns
    /// anything but `QueueFull`/`Closed`, or once the future has been polled past
    /// enqueueing, dropping it changes nothing: the sequencer commits and runs the
    /// effects regardless, and only the answer is lost.
    pub async fn submit(&self, command: Command) -> Result<Receipt, SequenceError> {
        let (reply, rx) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job::new(command, Some(reply));
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(match e {
                    TrySendError::Full(_) => SequenceError::QueueFull,
                    TrySendError::Disconnected(_) => SequenceError::Closed,
                });
            }
        }
        rx.await.map_err(|_| SequenceError::Closed)?
    }
}

impl Sequencer {
    /// Waits until everything answered before this call, and the follow-up signal events
    /// it caused, is committed.
    pub async fn flush(&self) -> Result<(), SequenceError> {
        self.submit(Command::new(Actor::System("flush"), Op::Barrier))
            .await
            .map(drop)
    }
}

fn run(
    store: &dyn Store,
    clock: &Clock,
    hooks: &dyn AfterCommit,
    rx: Receiver<Job>,
    queued: &AtomicUsize,
) {
    let mut carry: VecDeque<Job> = recovery(store).into_iter().collect();
    let mut revoking: HashSet<String> = HashSet::new();
    loop {
        if carry.iter().any(|j| j.attempts > 0) {
            // A continuation failed on storage: give the disk a moment before retrying.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // Continuations and follow-ups go first: a revoke-all finishes before anything
        // queued after it is decided.
        let mut jobs: Vec<Job> = carry.drain(..).collect();
        while jobs.is_empty() {
            // After a storage failure, keep trying to recover while idle, so reads heal
            // once the disk allows even if nothing is written.
            let received = if store.healthy() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                if let Err(e) = store.recover() {
                    tracing::debug!(error = %e, "storage still unavailable");
                }
                rx.recv_timeout(RECOVERY_INTERVAL)
            };
            match received {
                Ok(job) => {
                    queued.fetch_sub(1, Ordering::Relaxed);
                    jobs.push(job);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    queued.fetch_sub(1, Ordering::Relaxed);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        carry.extend(commit_batch(store, clock, hooks, jobs, &mut revoking));
    }
}

/// Revocations a crash interrupted: decommissioned integrations with live credentials.
fn recovery(store: &dyn Store) -> Vec<Job> {
    let Ok(registry) = store.registry() else {
        return Vec::new();
    };
    let now = store.head_timestamp_ms() / 1000;
    let mut jobs = Vec::new();
    for spec in registry.integrations().unwrap_or_default() {
        if spec.status != IntegrationStatus::Decommissioned {
            continue;
        }
        if registry
            .live(&spec.name, now, 1)
            .map(|l| !l.is_empty())
            .unwrap_or(false)
        {
            tracing::warn!(integration = %spec.name, "finishing the revocations of an interrupted decommissioning");
            let op = Op::RevokeIntegration {
                integration: spec.name,
                reason: CESSATION_OF_OPERATION,
            };
            jobs.push(Job::new(Command::new(Actor::System("recovery"), op), None));
        }
    }
    jobs
}

fn answer(hooks: &dyn AfterCommit, reply: Option<Reply>, result: Result<Receipt, SequenceError>) {
    match (reply, result) {
        // A caller that went away loses only the answer.
        (Some(reply), result) => drop(reply.send(result)),
        (None, Err(e)) => hooks.dropped(&e),
        (None, Ok(_)) => {}
    }
}

/// Folds a chunk's receipt into what earlier chunks of the same command did.
fn merge(carried: Option<Receipt>, mut next: Receipt) -> Receipt {
    let Some(mut first) = carried else {
        return next;
    };
    if let (
        Outcome::Revoked {
            certificates: c,
            tokens: t,
        },
        Outcome::Revoked {
            certificates: c2,
            tokens: t2,
        },
    ) = (&mut first.outcome, &next.outcome)
    {
        *c += c2;
        *t += t2;
    }
    // Records: the first chunk's, then only the last record of later chunks (bounded).
    first.records.extend(next.records.pop());
    first
}

/// The command that continues a chunked revocation in the next transaction.
fn continuation(command: Command) -> Command {
    let integration_reason = match command.op {
        Op::RevokeIntegration {
            integration,
            reason,
        } => (integration, reason),
        Op::Change { integration, .. } => (integration, CESSATION_OF_OPERATION),
        other => unreachable_continuation(other),
    };
    Command {
        actor: command.actor,
        op: Op::RevokeIntegration {
            integration: integration_reason.0,
            reason: integration_reason.1,
        },
    }
}

fn unreachable_continuation(op: Op) -> (String, u8) {
    // Only revoke-all and decommissioning plan continuations; anything else is a bug
    // that must not take the sequencer down.
    tracing::error!(?op, "continuation of a command that has none");
    (String::new(), 0)
}

struct Accepted {
    job: Job,
    plan: Plan,
    count: usize,
}

/// Answers a failed job, or, for a chunked revocation whose earlier chunks are durable,
/// keeps it for another attempt.
fn fail(
    hooks: &dyn AfterCommit,
    mut job: Job,
    error: SequenceError,
    revoking: &mut HashSet<String>,
    next: &mut Vec<Job>,
) {
    let retriable = matches!(error, SequenceError::Storage(_));
    if job.carried.is_some() && retriable && job.attempts + 1 < CONTINUATION_ATTEMPTS {
        tracing::warn!(%error, attempt = job.attempts + 1, "revocation chunk failed; retrying");
        job.attempts += 1;
        next.push(job);
        return;
    }
    if job.carried.is_some() {
        if let Some(name) = job.revoking() {
            revoking.remove(name);
        }
        tracing::error!(%error, "chunked revocation stopped; earlier chunks are committed");
    }
    answer(hooks, job.reply, Err(error));
}

/// Decides, commits and answers one batch; returns the jobs for the next batch.
fn commit_batch(
    store: &dyn Store,
    clock: &Clock,
    hooks: &dyn AfterCommit,
    jobs: Vec<Job>,
    revoking: &mut HashSet<String>,
) -> Vec<Job> {
    let mut next = Vec::new();
    // Entries carry one timestamp per batch, never below the head's (the ledger refuses
    // time going backwards).
    let now_ms = clock.unix_ms().max(store.head_timestamp_ms());
    let registry = match store.registry() {
        Ok(r) => r,
        Err(e) => {
            for job in jobs {
                fail(
                    hooks,
                    job,
                    SequenceError::Storage(e.to_string()),
                    revoking,
                    &mut next,
                );
            }
            return next;
        }
    };
    let keys_in_force = store.keys_in_force();
    let first_index = store.size();
    let mut claims = Claims::default();
    let mut accepted: Vec<Accepted> = Vec::with_capacity(jobs.len());
    let mut entries: Vec<NewEntry> = Vec::new();
    for mut job in jobs {
        // A continuation is not blocked by its own revoke-all.
        let own = job.carried.as_ref().and(job.revoking()).map(str::to_string);
        if let Some(name) = &own {
            revoking.remove(name);
        }
        let ctx = Context {
            registry: &registry,
            keys_in_force: &keys_in_force,
            revoking,
            claims: &claims,
            now_ms,
            check_actor: job.carried.is_none(),
        };
        let planned = plan::plan(&ctx, &mut job.command);
        if let Some(name) = own {
            revoking.insert(name);
        }
        match planned {
            Ok(mut p) => {
                p.claim(&mut claims, first_index + entries.len() as u64);
                let count = p.entries.len();
                entries.append(&mut p.entries);
                accepted.push(Accepted {
                    job,
                    plan: p,
                    count,
                });
            }
            Err(PlanError::Refused(r)) => {
                fail(hooks, job, SequenceError::Refused(r), revoking, &mut next)
            }
            Err(PlanError::Storage(e)) => {
                fail(hooks, job, SequenceError::Storage(e), revoking, &mut next)
            }
        }
    }
    drop(registry);
    let records = if entries.is_empty() {
        Vec::new()
    } else {
        let started = std::time::Instant::now();
        match store.append(entries) {
            Ok(records) => {
                hooks.committed(accepted.len(), started.elapsed());
                records
            }
            Err(e) => {
                tracing::error!(error = %e, "ledger append failed; batch not committed");
                for a in accepted {
                    fail(
                        hooks,
                        a.job,
                        SequenceError::Storage(e.clone()),
                        revoking,
                        &mut next,
                    );
                }
                return next;
            }
        }
    };
    // Durable. Effects of every command run before any caller hears back.
    let all_effects = accepted
        .iter_mut()
        .flat_map(|a| a.plan.effects.drain(..))
        .collect();
    let follow_ups = effects::run(hooks, all_effects, now_ms / 1000);
    let mut records = records.into_iter();
    for a in accepted {
        let receipt = Receipt {
            records: records.by_ref().take(a.count).collect::<Vec<Record>>(),
            outcome: a.plan.outcome,
        };
        let name = a.job.revoking().map(str::to_string);
        let receipt = merge(a.job.carried, receipt);
        if a.plan.more {
            if let Some(name) = name {
                revoking.insert(name);
            }
            next.push(Job {
                command: continuation(a.job.command),
                reply: a.job.reply,
                carried: Some(receipt),
                attempts: 0,
            });
        } else {
            if let Some(name) = name {
                revoking.remove(&name);
            }
            answer(hooks, a.job.reply, Ok(receipt));
        }
    }
    next.extend(
        follow_ups
            .into_iter()
            .map(|command| Job::new(command, None)),
    );
    next
}

#[cfg(test)]
mod tests;
