//! A synthetic, semantically valid bundle of any size, written directly
//! (no redb), for the verifier's throughput measurement and for tests that
//! need honest bundles. Deterministic: same options, same bytes.

use std::io::{self, Write};

use crate::checkpoint::Checkpoint;
use crate::event::{
    CertificateIssued, ChangeKind, ChangeRequested, EnrollmentCreated, EnrollmentUsed, Event,
    Genesis, IntegrationChanged, IntegrationRegistered, IntegrationSpec, IntegrationStatus,
    KeyInfo, KeyRole, KeyRotated, OperatorCertIssued, PrivilegeClass, Revoked, TokenIssued,
    TokenRevoked,
};
use crate::export::BundleWriter;
use crate::merkle::{leaf_hash, Frontier};
use crate::note::verifier_key_string;
use crate::record::{chain_hash, Record, ZERO_HASH};
use crate::signer::{DalekSigner, Signer};
use crate::Hash;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Exact number of records.
    pub events: u64,
    /// A checkpoint after every this many records (and one at the end).
    pub checkpoint_every: u64,
    /// Rotate the ledger key half way (checkpoints after it use the new key).
    pub rotate_ledger_key: bool,
    /// Seed byte of the genesis ledger key (`[seed; 32]`).
    pub seed: u8,
    /// Origin.
    pub origin: String,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            events: 1000,
            checkpoint_every: 100_000,
            rotate_ledger_key: true,
            seed: 0x5e,
            origin: "bench.credmint.example/ledger".into(),
        }
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Records written.
    pub records: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Final root.
    pub root: Hash,
    /// The genesis ledger key to pin.
    pub ledger_key: [u8; 32],
    /// The same key as a C2SP verifier key string.
    pub verifier_key: String,
    /// Bundle bytes.
    pub bytes: u64,
    /// The last checkpoint note.
    pub last_checkpoint: String,
}

const INTEGRATIONS: u64 = 64;
const BASE_MS: u64 = 1_750_000_000_000;

struct Gen<W: Write> {
    w: BundleWriter<W>,
    origin: String,
    every: u64,
    total: u64,
    frontier: Frontier,
    prev: Hash,
    signer: DalekSigner,
    checkpoints: u64,
    last_checkpoint: String,
}

impl<W: Write> Gen<W> {
    fn size(&self) -> u64 {
        self.frontier.size()
    }

    fn emit(&mut self, actor: &str, event: Event) -> io::Result<()> {
        let index = self.frontier.size();
        let rec = Record {
            index,
            timestamp_ms: BASE_MS + index,
            actor: actor.to_owned(),
            prev_hash: self.prev,
            event,
        };
        let bytes = rec.encode();
        self.w.record(&bytes)?;
        self.frontier.push(leaf_hash(&bytes), |_, _, _| {});
        self.prev = chain_hash(&bytes);
        let size = self.frontier.size();
        if size.is_multiple_of(self.every) || size == self.total {
            let cp = Checkpoint {
                origin: self.origin.clone(),
                size,
                root: self.frontier.root(),
                extensions: Vec::new(),
            };
            let text = cp
                .sign(&self.signer)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.w.checkpoint(&text)?;
            self.checkpoints += 1;
            self.last_checkpoint = text;
        }
        Ok(())
    }
}

/// A routine integration `int-NN`, registrable at the bench's base time (also the unit
/// tests' fixture).
pub(crate) fn spec(i: u64) -> IntegrationSpec {
    IntegrationSpec {
        name: format!("int-{i:02}"),
        business_owner: "payments".into(),
        technical_owner: "platform".into(),
        purpose: "synthetic benchmark workload".into(),
        environment: "prod".into(),
        scopes: vec!["read".into(), "write".into()],
        privilege_class: PrivilegeClass::Routine,
        max_ttl_secs: 86_400,
        // Within the routine review cap of the registration time (FORMAT.md §13.3).
        review_by: BASE_MS / 1000 + 300 * 86_400,
        approval_ref: format!("CHG-{i}"),
        allow_server_auth: false,
        dns_names: Vec::new(),
        status: IntegrationStatus::Active,
        policy: Default::default(),
    }
}

/// Writes a bundle of exactly `opts.events` records (at least the fixed
/// prelude of genesis, two operators and the integrations, 67 records) to
/// `out`. Every record is semantically valid (FORMAT.md §13).
pub fn generate_bundle(opts: &GenOptions, out: impl Write) -> io::Result<Generated> {
    let prelude = 3 + INTEGRATIONS;
    if opts.events < prelude || opts.checkpoint_every == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("need at least {prelude} events and checkpoint_every >= 1"),
        ));
    }
    let n = opts.events;
    let cps = n / opts.checkpoint_every + u64::from(!n.is_multiple_of(opts.checkpoint_every));
    let signer = DalekSigner::from_seed([opts.seed; 32]);
    let ledger_key = signer.public_key();
    let ca = DalekSigner::from_seed([opts.seed.wrapping_add(2); 32]);
    let token = DalekSigner::from_seed([opts.seed.wrapping_add(3); 32]);
    let token_fp = KeyInfo::ed25519(KeyRole::Token, "token", &token.public_key()).fingerprint();
    let mut g = Gen {
        w: BundleWriter::new(out, &opts.origin, n, cps)?,
        origin: opts.origin.clone(),
        every: opts.checkpoint_every,
        total: n,
        frontier: Frontier::new(),
        prev: ZERO_HASH,
        signer,
        checkpoints: 0,
        last_checkpoint: String::new(),
    };
    g.emit(
        "system:init",
        Event::Genesis(Genesis {
            origin: opts.origin.clone(),
            keys: vec![
                KeyInfo::ed25519(KeyRole::Ca, "ca", &ca.public_key()),
                KeyInfo::ed25519(KeyRole::Token, "token", &token.public_key()),
                KeyInfo::ed25519(KeyRole::Ledger, "ledger", &ledger_key),
            ],
            config_digest: [0x42; 32],
            ca_certificate_der: vec![0x30, 0x00],
        }),
    )?;
    for (i, (name, actor)) in [("alice", "system:init"), ("bob", "system:init")]
        .into_iter()
        .enumerate()
    {
        g.emit(
            actor,
            Event::OperatorCertIssued(OperatorCertIssued {
                name: name.into(),
                serial: vec![0x01, i as u8],
                not_after: 4_102_444_800,
                key_fingerprint: [i as u8 + 1; 32],
            }),
        )?;
    }
    let mut specs: Vec<IntegrationSpec> = (0..INTEGRATIONS).map(spec).collect();
    for s in &specs {
        g.emit(
            "operator:alice",
            Event::IntegrationRegistered(IntegrationRegistered { spec: s.clone() }),
        )?;
    }
    let mut step = 0u64;
    let mut serial_no = 0u64;
    let mut rotated = !opts.rotate_ledger_key;
    let mut cycle_cert: (Vec<u8>, u64) = (Vec::new(), 0);
    let mut cycle_jti = String::new();
    while g.size() < n {
        let room = n - g.size();
        let secs = (BASE_MS + g.size()) / 1000;
        if !rotated && g.size() >= n / 2 {
            rotated = true;
            let new = DalekSigner::from_seed([opts.seed.wrapping_add(1); 32]);
            let mut r = KeyRotated {
                role: KeyRole::Ledger,
                old_key: KeyInfo::ed25519(KeyRole::Ledger, "ledger", &g.signer.public_key()),
                new_key: KeyInfo::ed25519(KeyRole::Ledger, "ledger-2", &new.public_key()),
                ca_certificate_der: Vec::new(),
                cross_certificate_der: Vec::new(),
                old_signature: Vec::new(),
                new_signature: Vec::new(),
            };
            let msg = r.signed_message(&opts.origin);
            r.old_signature = sign(&g.signer, &msg)?;
            r.new_signature = sign(&new, &msg)?;
            g.signer = new;
            g.emit("operator:alice", Event::KeyRotated(r))?;
            continue;
        }
        if step % 50_000 == 49_999 && room >= 2 {
            let k = (step / 50_000) % INTEGRATIONS;
            let mut proposed = specs[k as usize].clone();
            proposed.max_ttl_secs += 60;
            proposed.approval_ref = format!("CHG-{k}-{step}");
            let request_index = g.size();
            g.emit(
                "operator:alice",
                Event::ChangeRequested(ChangeRequested {
                    proposed: proposed.clone(),
                    reason: "longer TTL".into(),
                }),
            )?;
            g.emit(
                "operator:bob",
                Event::IntegrationChanged(IntegrationChanged {
                    kind: ChangeKind::IncreaseApproved,
                    spec: proposed.clone(),
                    reference: proposed.approval_ref.clone(),
                    request_index,
                }),
            )?;
            specs[k as usize] = proposed;
            step += 1;
            continue;
        }
        let k = step % INTEGRATIONS;
        let name = &specs[k as usize].name;
        let workload = format!("workload:{name}");
        let slot = step % 10;
        match slot {
            0..=3 => {
                serial_no += 1;
                let serial = serial_bytes(serial_no);
                if slot == 0 {
                    cycle_cert = (serial.clone(), k);
                }
                let ev = Event::CertificateIssued(CertificateIssued {
                    serial,
                    integration: name.clone(),
                    subject: format!("spiffe://bench.credmint.example/prod/{name}"),
                    not_before: secs - 30,
                    not_after: secs + 3600,
                    key_fingerprint: [(step % 251) as u8; 32],
                });
                g.emit(&workload, ev)?;
            }
            4..=6 | 9 if slot != 9 || room < 3 => {
                let jti = format!("tok-{step:012}");
                if slot == 4 {
                    cycle_jti.clone_from(&jti);
                }
                let ev = Event::TokenIssued(TokenIssued {
                    jti,
                    integration: name.clone(),
                    subject: format!("spiffe://bench.credmint.example/prod/{name}"),
                    audience: "api".into(),
                    scopes: vec!["read".into()],
                    issued_at: secs,
                    expires_at: secs + 600,
                    key_fingerprint: token_fp,
                });
                g.emit(&workload, ev)?;
            }
            7 => {
                let owner = format!("workload:{}", specs[cycle_cert.1 as usize].name);
                let ev = Event::Revoked(Revoked {
                    serial: cycle_cert.0.clone(),
                    reason: 4,
                });
                g.emit(&owner, ev)?;
            }
            8 => {
                let ev = Event::TokenRevoked(TokenRevoked {
                    jti: cycle_jti.clone(),
                    reason: 5,
                });
                g.emit("operator:bob", ev)?;
            }
            _ => {
                serial_no += 1;
                let serial = serial_bytes(serial_no);
                let mut token_hash = [0u8; 32];
                token_hash[..8].copy_from_slice(&step.to_be_bytes());
                token_hash[8] = 0xee;
                let enrolling = format!("enrollment:{name}");
                g.emit(
                    "operator:alice",
                    Event::EnrollmentCreated(EnrollmentCreated {
                        integration: name.clone(),
                        token_hash,
                        expires_at: secs + 3600,
                    }),
                )?;
                g.emit(
                    &enrolling,
                    Event::CertificateIssued(CertificateIssued {
                        serial: serial.clone(),
                        integration: name.clone(),
                        subject: format!("spiffe://bench.credmint.example/prod/{name}"),
                        not_before: secs - 30,
                        not_after: secs + 3600,
                        key_fingerprint: [0x77; 32],
                    }),
                )?;
                g.emit(
                    &enrolling,
                    Event::EnrollmentUsed(EnrollmentUsed {
                        integration: name.clone(),
                        token_hash,
                        serial,
                    }),
                )?;
            }
        }
        step += 1;
    }
    let root = g.frontier.root();
    let head = g.prev;
    let checkpoints = g.checkpoints;
    let last_checkpoint = std::mem::take(&mut g.last_checkpoint);
    let (_, bytes) = g.w.finish(&root, &head)?;
    Ok(Generated {
        records: n,
        checkpoints,
        root,
        ledger_key,
        verifier_key: verifier_key_string(&opts.origin, &ledger_key),
        bytes,
        last_checkpoint,
    })
}

fn serial_bytes(n: u64) -> Vec<u8> {
    let mut s = vec![0x40, 0, 0, 0, 0, 0, 0, 0];
    s.extend_from_slice(&n.to_be_bytes());
    s
}

fn sign(s: &DalekSigner, msg: &[u8]) -> io::Result<Vec<u8>> {
    s.sign(msg)
        .map(|b| b.to_vec())
        .map_err(|e| io::Error::other(e.to_string()))
}
