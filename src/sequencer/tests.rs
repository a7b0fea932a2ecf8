//! The sequencer against a real redb ledger, with faults injected at the store seam:
//! each fault either commits nothing (and says so) or commits with every effect run.

// The gate is a std mutex on purpose (the sequencer thread is not async); the tests hold
// it across awaits to keep that thread parked while they queue commands.
#![allow(clippy::await_holding_lock)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credmint_ledger::event::{
    AnomalyKind, CertificateIssued, ChangeKind, Event, Genesis, IntegrationChanged,
    IntegrationRegistered, IntegrationSpec, IntegrationStatus, KeyInfo, KeyRole, PrivilegeClass,
    TokenIssued, MAX_TEXT,
};
use credmint_ledger::{DalekSigner, Ledger, NewEntry, Record, Signer};

use super::*;
use crate::metrics::{Class, Tallied};
use crate::registry::{apply, ProjectionError, Registry};

const T0_MS: u64 = 1_800_000_000_000;

fn spec(name: &str) -> IntegrationSpec {
    IntegrationSpec {
        name: name.into(),
        business_owner: "finance".into(),
        technical_owner: "platform".into(),
        purpose: "invoices".into(),
        environment: "prod".into(),
        scopes: vec!["invoices:read".into()],
        privilege_class: PrivilegeClass::Routine,
        max_ttl_secs: 3600,
        review_by: u64::MAX / 2,
        approval_ref: format!("CHG-{name}"),
        allow_server_auth: false,
        dns_names: vec![],
        status: IntegrationStatus::Active,
        policy: Default::default(),
    }
}

fn cert(integration: &str, serial: Vec<u8>) -> CertificateIssued {
    CertificateIssued {
        serial,
        integration: integration.into(),
        subject: format!("spiffe://test/prod/{integration}"),
        not_before: T0_MS / 1000,
        not_after: u64::MAX / 4,
        key_fingerprint: [7; 32],
    }
}

fn token(integration: &str, jti: &str) -> TokenIssued {
    TokenIssued {
        jti: jti.into(),
        integration: integration.into(),
        subject: format!("spiffe://test/prod/{integration}"),
        audience: "api".into(),
        scopes: vec!["invoices:read".into()],
        issued_at: T0_MS / 1000,
        expires_at: u64::MAX / 4,
        key_fingerprint: [8; 32],
    }
}

fn privileged_spec() -> IntegrationSpec {
    let mut privileged = spec("vault");
    privileged.privilege_class = PrivilegeClass::Privileged;
    privileged
}

/// The fixture's one key (every role).
fn key_info(role: KeyRole) -> KeyInfo {
    KeyInfo::ed25519(
        role,
        format!("{role:?}"),
        &DalekSigner::from_seed([0x21; 32]).public_key(),
    )
}

/// An issuance decided on `spec` and signed by the fixture's key.
fn basis(spec: &IntegrationSpec) -> Basis {
    Basis {
        spec: spec_hash(spec),
        signer_spki: key_info(KeyRole::Ca).spki_der,
    }
}

fn entry(actor: &str, event: Event) -> NewEntry {
    NewEntry {
        timestamp_ms: T0_MS,
        actor: actor.into(),
        event,
    }
}

/// The real ledger, with switches that make the next registry read or append fail, a
/// gate that holds the sequencer thread inside its next registry read, and a log of the
/// size of every committed batch.
struct FaultyStore {
    inner: LedgerStore,
    fail_registry: AtomicBool,
    fail_append: AtomicBool,
    /// Fail the append with this 1-based number (0: none).
    fail_append_nth: AtomicUsize,
    appends: AtomicUsize,
    gate: Mutex<()>,
    /// Registry reads started (the thread may be held inside the latest).
    entered: AtomicUsize,
    batches: Mutex<Vec<usize>>,
    /// A full disk: appends and recovery attempts fail while set.
    disk_full: AtomicBool,
    /// Left unhealthy by a failed append until a recovery succeeds.
    unhealthy: AtomicBool,
    recoveries: AtomicUsize,
}

impl Store for FaultyStore {
    fn healthy(&self) -> bool {
        !self.unhealthy.load(Ordering::SeqCst)
    }
    fn recover(&self) -> Result<(), String> {
        self.recoveries.fetch_add(1, Ordering::SeqCst);
        if self.disk_full.load(Ordering::SeqCst) {
            return Err("injected: still full".into());
        }
        self.unhealthy.store(false, Ordering::SeqCst);
        Ok(())
    }
    fn keys_in_force(&self) -> Vec<KeyInfo> {
        self.inner.keys_in_force()
    }
    fn registry(&self) -> Result<Registry, ProjectionError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        drop(self.gate.lock().unwrap_or_else(|p| p.into_inner()));
        if self.fail_registry.swap(false, Ordering::SeqCst) {
            return Err(ProjectionError::Storage("injected read failure".into()));
        }
        self.inner.registry()
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn head_timestamp_ms(&self) -> u64 {
        self.inner.head_timestamp_ms()
    }
    fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Record>, String> {
        let nth = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if self.disk_full.load(Ordering::SeqCst) {
            self.unhealthy.store(true, Ordering::SeqCst);
            return Err("injected: no space left on device".into());
        }
        if self.fail_append.swap(false, Ordering::SeqCst)
            || self.fail_append_nth.load(Ordering::SeqCst) == nth
        {
            return Err("injected append failure".into());
        }
        let n = entries.len();
        let records = self.inner.append(entries)?;
        self.batches.lock().unwrap().push(n);
        Ok(records)
    }
}

/// Effects as the sequencer reports them.
#[derive(Default)]
struct Recorded {
    revoked: Mutex<Vec<Vec<u8>>>,
    tokens_revoked: Mutex<Vec<String>>,
    checkpoints: AtomicUsize,
    issued: AtomicUsize,
    flagged: AtomicUsize,
    dropped: AtomicUsize,
    /// Follow-up signal to raise on the next issuance.
    raise: AtomicBool,
    tallies: Mutex<Vec<(Tallied, Class)>>,
    /// Commands per committed transaction.
    committed: Mutex<Vec<usize>>,
}

impl AfterCommit for Recorded {
    fn revoked(&self, serials: &[Vec<u8>]) {
        self.revoked.lock().unwrap().extend_from_slice(serials);
    }
    fn tokens_revoked(&self, jtis: &[String]) {
        self.tokens_revoked.lock().unwrap().extend_from_slice(jtis);
    }
    fn checkpoint_due(&self) {
        self.checkpoints.fetch_add(1, Ordering::SeqCst);
    }
    fn issued(&self, issued: Issued<'_>) -> Vec<Command> {
        self.issued.fetch_add(1, Ordering::SeqCst);
        if !self.raise.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        vec![Command::new(
            Actor::System("signals"),
            Op::Anomaly {
                flagged: credmint_ledger::event::AnomalyFlagged {
                    integration: issued.integration.into(),
                    kind: AnomalyKind::VolumeSpike,
                    detail: "test".into(),
                    auto_suspended: false,
                },
                auto_suspend: true,
            },
        )]
    }
    fn flagged(&self, _: AnomalyKind, _: bool) {
        self.flagged.fetch_add(1, Ordering::SeqCst);
    }
    fn dropped(&self, _: &SequenceError) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
    fn committed(&self, commands: usize, _: Duration) {
        self.committed.lock().unwrap().push(commands);
    }
    fn tally(&self, what: Tallied, class: Class) {
        self.tallies.lock().unwrap().push((what, class));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Arc<Ledger>,
    store: Arc<FaultyStore>,
    hooks: Arc<Recorded>,
    sequencer: Sequencer,
}

/// A ledger with genesis, operator `admin` (serial [0xa0]), integration `ci` and its
/// certificate [1]; `extra` entries are appended before the sequencer starts.
fn fixture(capacity: usize, extra: Vec<NewEntry>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let genesis = Genesis {
        origin: "test/ledger".into(),
        keys: vec![
            key_info(KeyRole::Ca),
            key_info(KeyRole::Token),
            key_info(KeyRole::Ledger),
        ],
        config_digest: [0; 32],
        ca_certificate_der: vec![0x30, 0x03, 0x02, 0x01, 0x01],
    };
    let ledger = Ledger::create(
        &dir.path().join("l.redb"),
        entry("system:init", Event::Genesis(genesis)),
    )
    .unwrap();
    let mut opening = vec![
        entry(
            "system:init",
            Event::OperatorCertIssued(credmint_ledger::event::OperatorCertIssued {
                name: "admin".into(),
                serial: vec![0xa0],
                not_after: u64::MAX / 4,
                key_fingerprint: [9; 32],
            }),
        ),
        entry(
            "operator:admin",
            Event::IntegrationRegistered(IntegrationRegistered { spec: spec("ci") }),
        ),
        entry(
            "enrollment:ci",
            Event::CertificateIssued(cert("ci", vec![1])),
        ),
    ];
    opening.extend(extra);
    ledger.append_batch_with(opening, apply).unwrap();
    let ledger = Arc::new(ledger);
    let store = Arc::new(FaultyStore {
        inner: LedgerStore(ledger.clone()),
        fail_registry: AtomicBool::new(false),
        fail_append: AtomicBool::new(false),
        fail_append_nth: AtomicUsize::new(0),
        appends: AtomicUsize::new(0),
        gate: Mutex::new(()),
        entered: AtomicUsize::new(0),
        batches: Mutex::new(Vec::new()),
        disk_full: AtomicBool::new(false),
        unhealthy: AtomicBool::new(false),
        recoveries: AtomicUsize::new(0),
    });
    let hooks = Arc::new(Recorded::default());
    let (sequencer, _thread) =
        Sequencer::start(store.clone(), Clock::default(), hooks.clone(), capacity);
    // Past its start-up recovery read: from here on every read is a batch's.
    wait_until(|| store.entered.load(Ordering::SeqCst) >= 1);
    Fixture {
        _dir: dir,
        ledger,
        store,
        hooks,
        sequencer,
    }
}

fn admin() -> Actor {
    Actor::Operator {
        name: "admin".into(),
        serial: vec![0xa0],
    }
}

fn workload() -> Actor {
    Actor::Workload {
        integration: "ci".into(),
        serial: vec![1],
        slack: Slack::default(),
    }
}

fn issue_token(jti: &str) -> Command {
    Command::new(
        workload(),
        Op::IssueToken {
            token: token("ci", jti),
            basis: basis(&spec("ci")),
            peer: None,
        },
    )
}

fn suspend(reason: String) -> Command {
    let mut after = spec("ci");
    after.status = IntegrationStatus::Suspended;
    Command::new(
        admin(),
        Op::Change {
            integration: "ci".into(),
            base: spec_hash(&spec("ci")),
            change: Change::Apply(vec![IntegrationChanged {
                kind: ChangeKind::Suspended,
                spec: after,
                reference: reason,
                request_index: 0,
            }]),
        },
    )
}

fn revoke(serial: Vec<u8>, actor: Actor) -> Command {
    Command::new(
        actor,
        Op::Revoke {
            target: Target::Certificate(serial),
            reason: 1,
        },
    )
}

/// `n` more certificates of `ci`, expiring at `not_after`.
fn many_certs(n: usize, not_after: u64) -> Vec<NewEntry> {
    (0..n as u32)
        .map(|i| {
            let mut serial = vec![0x10];
            serial.extend(i.to_be_bytes());
            let mut c = cert("ci", serial);
            c.not_after = not_after;
            entry("enrollment:ci", Event::CertificateIssued(c))
        })
        .collect()
}

fn revoke_all() -> Command {
    Command::new(
        admin(),
        Op::RevokeIntegration {
            integration: "ci".into(),
            reason: 1,
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Submits `commands` while the sequencer is held, so they are decided as one batch
/// (after one held "warm-up" command that takes the thread into its registry read).
fn one_batch(f: &Fixture, commands: Vec<Command>) -> Vec<Result<Receipt, SequenceError>> {
    let rt = runtime();
    rt.block_on(async {
        let held = f.store.gate.lock().unwrap();
        let warm = hold_thread(f, issue_token("warm-up"));
        let mut handles = Vec::new();
        for c in commands {
            let s = f.sequencer.clone();
            handles.push(tokio::spawn(async move { s.submit(c).await }));
            // Keep submission order = batch order.
            let queued = handles.len();
            wait_until(|| f.sequencer.queued.load(Ordering::SeqCst) == queued);
        }
        drop(held);
        warm.await.unwrap().unwrap();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    })
}

/// Submits `command` and waits until the (held) thread is inside the registry read of
/// its batch, so whatever is submitted next queues behind it.
fn hold_thread(
    f: &Fixture,
    command: Command,
) -> tokio::task::JoinHandle<Result<Receipt, SequenceError>> {
    let before = f.store.entered.load(Ordering::SeqCst);
    let s = f.sequencer.clone();
    let handle = tokio::spawn(async move { s.submit(command).await });
    wait_until(|| f.store.entered.load(Ordering::SeqCst) > before);
    handle
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn events(ledger: &Ledger) -> Vec<Record> {
    ledger
        .records(0)
        .unwrap()
        .map(|r| r.unwrap().decode().unwrap())
        .collect()
}

#[test]
fn an_invalid_command_is_refused_alone_and_the_rest_of_its_batch_commits() {
    let f = fixture(64, vec![]);
    let size = f.ledger.size();
    let results = one_batch(
        &f,
        vec![
            issue_token("a"),
            suspend("x".repeat(MAX_TEXT + 1)),
            issue_token("b"),
        ],
    );
    assert!(results[0].is_ok(), "{:?}", results[0]);
    match &results[1] {
        Err(SequenceError::Refused(Refusal::Invalid(why))) => assert!(
            why.contains("reference") || why.contains("long") || why.contains("limit"),
            "{why}"
        ),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(results[2].is_ok(), "{:?}", results[2]);
    // warm-up batch (1) + one batch with the two valid tokens (2).
    assert_eq!(*f.store.batches.lock().unwrap(), vec![1, 2]);
    assert_eq!(f.ledger.size(), size + 3);
    let spec_now = Registry::open(&f.ledger)
        .unwrap()
        .integration("ci")
        .unwrap()
        .unwrap();
    assert_eq!(spec_now.status, IntegrationStatus::Active);
}

#[test]
fn committed_credentials_are_tallied_by_class_and_refused_or_repeated_ones_are_not() {
    let f = fixture(64, vec![]);
    let results = one_batch(
        &f,
        vec![
            issue_token("t1"),
            issue_token("t1"),
            revoke(vec![1], admin()),
            revoke(vec![1], admin()),
        ],
    );
    assert!(matches!(
        results[1],
        Err(SequenceError::Refused(Refusal::JtiTaken))
    ));
    assert!(matches!(
        results[3].as_ref().unwrap().outcome,
        Outcome::AlreadyRevoked { .. }
    ));
    let routine = |what| (what, Class::Routine);
    assert_eq!(
        *f.hooks.tallies.lock().unwrap(),
        vec![
            routine(Tallied::Token),
            routine(Tallied::Token),
            routine(Tallied::CertificateRevoked),
        ]
    );
    // The warm-up alone, then the three accepted commands in one transaction.
    assert_eq!(*f.hooks.committed.lock().unwrap(), vec![1, 3]);
}

#[test]
fn a_read_failure_is_a_storage_error_never_a_not_found_and_commits_nothing() {
    let f = fixture(64, vec![]);
    let size = f.ledger.size();
    f.store.fail_registry.store(true, Ordering::SeqCst);
    let rt = runtime();
    let r = rt.block_on(f.sequencer.submit(revoke(vec![1], admin())));
    assert!(matches!(r, Err(SequenceError::Storage(_))), "{r:?}");
    assert_eq!(f.ledger.size(), size);
    assert!(f.hooks.revoked.lock().unwrap().is_empty());
    // The next command works: the fault left nothing behind.
    let r = rt
        .block_on(f.sequencer.submit(revoke(vec![1], admin())))
        .unwrap();
    assert_eq!(r.outcome, Outcome::Appended);
    assert_eq!(*f.hooks.revoked.lock().unwrap(), vec![vec![1]]);
}

#[test]
fn an_append_failure_answers_every_command_of_the_batch_and_runs_no_effect() {
    let f = fixture(64, vec![]);
    let size = f.ledger.size();
    f.store.fail_append.store(true, Ordering::SeqCst);
    let rt = runtime();
    let r = rt.block_on(f.sequencer.submit(revoke(vec![1], admin())));
    assert!(
        matches!(r, Err(SequenceError::Storage(ref e)) if e.contains("injected")),
        "{r:?}"
    );
    assert_eq!(f.ledger.size(), size);
    assert!(f.hooks.revoked.lock().unwrap().is_empty());
    assert_eq!(f.hooks.checkpoints.load(Ordering::SeqCst), 0);
    let r = rt
        .block_on(f.sequencer.submit(revoke(vec![1], admin())))
        .unwrap();
    assert_eq!(r.outcome, Outcome::Appended);
}

#[test]
fn an_idle_sequencer_keeps_recovering_a_failed_store_and_commits_once_it_can() {
    let f = fixture(64, vec![]);
    let size = f.ledger.size();
    let rt = runtime();
    f.store.disk_full.store(true, Ordering::SeqCst);
    let r = rt.block_on(f.sequencer.submit(revoke(vec![1], admin())));
    assert!(matches!(r, Err(SequenceError::Storage(_))), "{r:?}");
    assert!(!f.store.healthy());
    // Idle and failed: the thread retries on its own (once a second), and keeps failing
    // while the disk is full.
    wait_until(|| f.store.recoveries.load(Ordering::SeqCst) >= 2);
    assert!(!f.store.healthy());
    f.store.disk_full.store(false, Ordering::SeqCst);
    wait_until(|| f.store.healthy());
    assert_eq!(f.ledger.size(), size, "nothing half-written");
    let r = rt
        .block_on(f.sequencer.submit(revoke(vec![1], admin())))
        .unwrap();
    assert_eq!(r.outcome, Outcome::Appended);
    // Healthy again: no more recovery attempts while idle.
    let attempts = f.store.recoveries.load(Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(f.store.recoveries.load(Ordering::SeqCst), attempts);
}

#[test]
fn a_full_queue_is_refused_at_once_and_has_room_says_so_before_signing() {
    let f = fixture(1, vec![]);
    let rt = runtime();
    rt.block_on(async {
        let held = f.store.gate.lock().unwrap();
        let first = hold_thread(&f, issue_token("1"));
        let s = f.sequencer.clone();
        let second = tokio::spawn(async move { s.submit(issue_token("2")).await });
        wait_until(|| f.sequencer.queued.load(Ordering::SeqCst) == 1);
        assert!(!f.sequencer.has_room());
        let third = f.sequencer.submit(issue_token("3")).await;
        assert_eq!(third.unwrap_err(), SequenceError::QueueFull);
        drop(held);
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert!(f.sequencer.has_room());
    });
}

#[test]
fn a_caller_that_goes_away_still_gets_its_revocation_committed_with_its_effects() {
    let f = fixture(64, vec![]);
    let rt = runtime();
    rt.block_on(async {
        let held = f.store.gate.lock().unwrap();
        let caller = hold_thread(&f, revoke(vec![1], admin()));
        // The client disconnects: its request future is dropped mid-flight.
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        drop(held);
    });
    wait_until(|| !f.hooks.revoked.lock().unwrap().is_empty());
    assert_eq!(*f.hooks.revoked.lock().unwrap(), vec![vec![1]]);
    assert!(f.hooks.checkpoints.load(Ordering::SeqCst) >= 1);
    assert!(events(&f.ledger)
        .iter()
        .any(|r| matches!(&r.event, Event::Revoked(v) if v.serial == vec![1])));
}

#[test]
fn a_credential_revoked_earlier_in_the_batch_authorises_nothing_after_it() {
    let f = fixture(64, vec![]);
    let results = one_batch(&f, vec![revoke(vec![1], admin()), issue_token("late")]);
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &SequenceError::Refused(Refusal::ActorRevoked)
    );
}

#[test]
fn a_revoked_operator_commits_nothing_even_if_its_request_was_in_flight() {
    let f = fixture(
        64,
        vec![entry(
            "enrollment:ci",
            Event::CertificateIssued(cert("ci", vec![2])),
        )],
    );
    // Revoking the operator's own certificate (as another operator would) first.
    let other = Actor::System("test");
    let results = one_batch(
        &f,
        vec![revoke(vec![0xa0], other), revoke(vec![2], admin())],
    );
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &SequenceError::Refused(Refusal::ActorRevoked)
    );
}

#[test]
fn revoking_twice_in_one_batch_reports_the_first_revocation() {
    let f = fixture(64, vec![]);
    let results = one_batch(&f, vec![revoke(vec![1], admin()), revoke(vec![1], admin())]);
    let first = results[0].as_ref().unwrap().first_index().unwrap();
    assert_eq!(
        results[1].as_ref().unwrap().outcome,
        Outcome::AlreadyRevoked { index: first }
    );
}

#[test]
fn revoke_all_goes_in_bounded_chunks_and_answers_once_with_the_total() {
    let many = REVOKE_CHUNK + 7;
    let mut extra = many_certs(many, u64::MAX / 4);
    extra.push(entry("workload:ci", Event::TokenIssued(token("ci", "t1"))));
    let f = fixture(64, extra);
    let rt = runtime();
    let receipt = rt.block_on(f.sequencer.submit(revoke_all())).unwrap();
    // Every live credential: the fixture's [1], the many, and one token.
    assert_eq!(
        receipt.outcome,
        Outcome::Revoked {
            certificates: many + 1,
            tokens: 1
        }
    );
    let batches = f.store.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(batches.iter().all(|&n| n <= REVOKE_CHUNK));
    assert_eq!(f.hooks.revoked.lock().unwrap().len(), many + 1);
    // Tokens are reported too: their cached JSON status must go as well.
    assert_eq!(
        *f.hooks.tokens_revoked.lock().unwrap(),
        vec!["t1".to_string()]
    );
    let registry = Registry::open(&f.ledger).unwrap();
    assert_eq!(registry.live_credentials("ci", 0).unwrap(), (0, 0));
}

#[test]
fn an_interrupted_decommissioning_is_finished_at_start() {
    let mut gone = spec("ci");
    gone.status = IntegrationStatus::Decommissioned;
    // Decommissioned, but the crash came before the revocations.
    let extra = vec![entry(
        "operator:admin",
        Event::IntegrationChanged(IntegrationChanged {
            kind: ChangeKind::Decommissioned,
            spec: gone,
            reference: "retired".into(),
            request_index: 0,
        }),
    )];
    let f = fixture(64, extra);
    wait_until(|| !f.hooks.revoked.lock().unwrap().is_empty());
    let last = events(&f.ledger).pop().unwrap();
    assert_eq!(last.actor, "system:recovery");
    assert!(
        matches!(last.event, Event::Revoked(ref r) if r.serial == vec![1] && r.reason == CESSATION_OF_OPERATION)
    );
}

#[test]
fn signal_follow_ups_commit_in_the_next_batch_and_may_suspend_the_integration() {
    let privileged = privileged_spec();
    let f = fixture(
        64,
        vec![
            entry(
                "operator:admin",
                Event::IntegrationRegistered(IntegrationRegistered { spec: privileged }),
            ),
            entry(
                "enrollment:vault",
                Event::CertificateIssued(cert("vault", vec![0x56])),
            ),
        ],
    );
    f.hooks.raise.store(true, Ordering::SeqCst);
    let rt = runtime();
    let vault = Actor::Workload {
        integration: "vault".into(),
        serial: vec![0x56],
        slack: Slack::default(),
    };
    rt.block_on(f.sequencer.submit(Command::new(
        vault,
        Op::IssueCertificate {
            cert: cert("vault", vec![0x55]),
            enrollment: None,
            basis: basis(&privileged_spec()),
            peer: None,
        },
    )))
    .unwrap();
    wait_until(|| f.hooks.flagged.load(Ordering::SeqCst) == 1);
    let tail: Vec<Record> = events(&f.ledger).into_iter().rev().take(2).collect();
    assert!(
        matches!(&tail[0].event, Event::IntegrationChanged(c) if c.kind == ChangeKind::Suspended)
    );
    assert!(matches!(&tail[1].event, Event::AnomalyFlagged(a) if a.auto_suspended));
    assert_eq!(tail[0].actor, "system:signals");
}

#[test]
fn an_issuance_decided_before_a_committed_narrowing_is_stale() {
    let f = fixture(64, vec![]);
    let rt = runtime();
    let mut narrower = spec("ci");
    narrower.max_ttl_secs = 60;
    let change = Command::new(
        admin(),
        Op::Change {
            integration: "ci".into(),
            base: spec_hash(&spec("ci")),
            change: Change::Apply(vec![IntegrationChanged {
                kind: ChangeKind::Narrowed,
                spec: narrower,
                reference: "shorter".into(),
                request_index: 0,
            }]),
        },
    );
    rt.block_on(f.sequencer.submit(change)).unwrap();
    // A token granted (and signed) on the old state arrives after the narrowing.
    let late = rt.block_on(f.sequencer.submit(issue_token("late")));
    assert_eq!(
        late.unwrap_err(),
        SequenceError::Refused(Refusal::Stale("ci".into()))
    );
}

#[test]
fn a_credential_signed_by_a_key_not_in_force_is_never_recorded() {
    let f = fixture(64, vec![]);
    let rt = runtime();
    let mut command = issue_token("old-key");
    if let Op::IssueToken { basis, .. } = &mut command.op {
        basis.signer_spki = KeyInfo::ed25519(KeyRole::Token, "old", &[9; 32]).spki_der;
    }
    let r = rt.block_on(f.sequencer.submit(command));
    assert_eq!(r.unwrap_err(), SequenceError::Refused(Refusal::KeyRotated));
}

#[test]
fn a_stale_key_rotation_is_refused_alone_instead_of_failing_its_batch() {
    let f = fixture(64, vec![]);
    let stale = credmint_ledger::event::KeyRotated {
        role: KeyRole::Token,
        old_key: KeyInfo::ed25519(KeyRole::Token, "gone", &[3; 32]),
        new_key: KeyInfo::ed25519(KeyRole::Token, "new", &[4; 32]),
        ca_certificate_der: vec![],
        cross_certificate_der: vec![],
        old_signature: vec![0; 64],
        new_signature: vec![0; 64],
    };
    let swapped = Arc::new(AtomicBool::new(false));
    let flag = swapped.clone();
    let rotate = Command::new(
        admin(),
        Op::RotateKey {
            event: stale,
            swap: KeySwap(Box::new(move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })),
        },
    );
    let results = one_batch(&f, vec![rotate, issue_token("alongside")]);
    assert!(
        matches!(
            &results[0],
            Err(SequenceError::Refused(Refusal::Invalid(_)))
        ),
        "{:?}",
        results[0]
    );
    assert!(results[1].is_ok(), "{:?}", results[1]);
    assert!(!swapped.load(Ordering::SeqCst));
}

#[test]
fn nothing_is_issued_to_an_integration_while_its_revoke_all_continues() {
    // They expire before [1], so the actor's own certificate is in the last chunk.
    let extra = many_certs(REVOKE_CHUNK + 3, u64::MAX / 8);
    let f = fixture(64, extra);
    let results = one_batch(&f, vec![revoke_all(), issue_token("during")]);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert_eq!(
        results[1].as_ref().unwrap_err(),
        &SequenceError::Refused(Refusal::NotIssuable("ci".into()))
    );
}

#[test]
fn a_failed_chunk_is_retried_and_the_revoke_all_still_completes() {
    let extra = many_certs(REVOKE_CHUNK + 3, u64::MAX / 4);
    let f = fixture(64, extra);
    // The second chunk's first append fails; its retry succeeds.
    f.store.fail_append_nth.store(2, Ordering::SeqCst);
    let rt = runtime();
    let receipt = rt.block_on(f.sequencer.submit(revoke_all())).unwrap();
    assert_eq!(f.store.appends.load(Ordering::SeqCst), 3);
    assert_eq!(receipt.outcome.revoked_counts(), (REVOKE_CHUNK + 4, 0));
    let registry = Registry::open(&f.ledger).unwrap();
    assert_eq!(registry.live_credentials("ci", 0).unwrap(), (0, 0));
}
