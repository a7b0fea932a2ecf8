//! The ledger file: a redb database holding records, Merkle nodes and
//! checkpoints, plus the in-memory head (frontier, chain head) rebuilt on
//! open with O(log n) reads.
//!
//! One writer at a time (a mutex around each append); readers take the head
//! snapshot (`Arc`) without waiting for a write in progress.

mod append;
mod checkpoints;
mod read;
pub mod schema;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::error::StoreError;
use crate::event::Event;
use crate::keys::KeyRing;
use crate::merkle::Frontier;
use crate::record::{chain_hash, NewEntry, Record};
use crate::Hash;

pub use read::{CheckpointIter, RawRecord, RecordIter};
pub use snapshot::Snapshot;

/// State after the last committed record; replaced whole after each commit.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) frontier: Frontier,
    pub(crate) head_hash: Hash,
    pub(crate) last_timestamp_ms: u64,
    /// Keys in force after the last committed record; `None` only before genesis.
    pub(crate) keys: Option<KeyRing>,
}

impl Head {
    fn empty() -> Self {
        Head {
            frontier: Frontier::new(),
            head_hash: crate::record::ZERO_HASH,
            last_timestamp_ms: 0,
            keys: None,
        }
    }
}

/// An open ledger file.
pub struct Ledger {
    path: PathBuf,
    /// `None` only while [`Ledger::reopen`] has closed the file and not yet opened it again.
    db: RwLock<Option<Arc<Database>>>,
    origin: String,
    head: RwLock<Arc<Head>>,
    writer: Mutex<()>,
    /// Set when a write failed in storage (disk full, I/O error): redb then fails every
    /// later operation on that handle ("previous I/O error") until the file is reopened.
    poisoned: AtomicBool,
    /// Set by a failed write, cleared by the next durable commit: what health reports.
    failing: AtomicBool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("origin", &self.origin)
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Creates a new ledger file whose record 0 is `genesis`. Refuses if the
    /// file already holds a ledger, so `init` can never fork an existing log.
    pub fn create(path: &Path, genesis: NewEntry) -> Result<Ledger, StoreError> {
        let Event::Genesis(g) = &genesis.event else {
            return Err(StoreError::InvalidEntry {
                position: 0,
                reason: "record 0 must be a genesis event".into(),
            });
        };
        KeyRing::from_genesis(g).map_err(|reason| StoreError::InvalidEntry {
            position: 0,
            reason: reason.into(),
        })?;
        let origin = g.origin.clone();
        let db = Database::create(path)?;
        {
            let txn = db.begin_read()?;
            let existing_origin = match txn.open_table(schema::META) {
                Ok(t) => t
                    .get(schema::META_ORIGIN)?
                    .map(|v| String::from_utf8_lossy(v.value()).into_owned()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            };
            let size = match txn.open_table(schema::RECORDS) {
                Ok(t) => t.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0),
                Err(redb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => return Err(e.into()),
            };
            if existing_origin.is_some() || size > 0 {
                return Err(StoreError::AlreadyExists {
                    origin: existing_origin.unwrap_or_default(),
                    size,
                });
            }
        }
        let ledger = Ledger {
            path: path.to_owned(),
            db: RwLock::new(Some(Arc::new(db))),
            origin: origin.clone(),
            head: RwLock::new(Arc::new(Head::empty())),
            writer: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        };
        ledger
            .append_inner(vec![genesis], Some(&origin), |_, _| {
                Ok::<(), std::convert::Infallible>(())
            })
            .map_err(|e| match e {
                crate::error::AppendError::Store(s) => s,
                crate::error::AppendError::Project(never) => match never {},
            })?;
        Ok(ledger)
    }

    /// Opens an existing ledger and rebuilds the head from the stored tables:
    /// the last record (chain head, timestamp), record 0 (ledger key) and one
    /// node per set bit of the size (frontier) — O(log n) reads.
    pub fn open(path: &Path) -> Result<Ledger, StoreError> {
        let (db, origin, head) = load(path)?;
        Ok(Ledger {
            path: path.to_owned(),
            db: RwLock::new(Some(Arc::new(db))),
            origin,
            head: RwLock::new(Arc::new(head)),
            writer: Mutex::new(()),
            poisoned: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        })
    }

    /// True after a write failed in storage and until [`Ledger::reopen`] succeeds: redb
    /// fails every operation on the old handle meanwhile.
    pub fn needs_reopen(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// False from a failed write until the next durable commit (an append, a checkpoint
    /// or [`Ledger::probe_write`]): whether the ledger can take writes, for health checks.
    pub fn writable(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    /// Commits a small scratch write (table `credmint_write_probe`, outside the ledger
    /// format) to learn whether storage takes writes again, e.g. after a full disk was
    /// freed while nothing else was written.
    pub fn probe_write(&self) -> Result<(), StoreError> {
        const PROBE: redb::TableDefinition<u8, &[u8]> =
            redb::TableDefinition::new("credmint_write_probe");
        let _writer = match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let result = (|| -> Result<(), StoreError> {
            let mut txn = self.begin_write()?;
            txn.set_durability(redb::Durability::Immediate)?;
            {
                let mut table = txn.open_table(PROBE)?;
                // A few fresh pages, so a full disk is noticed, not just the header.
                table.insert(0, &[0x5a; 16 * 1024][..])?;
            }
            txn.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.committed();
                Ok(())
            }
            Err(e) => Err(self.write_failed(e)),
        }
    }

    /// Closes the file and opens it again, rebuilding the head from what is durable (a
    /// failed commit left nothing behind). This is how the ledger recovers from a full disk
    /// once space is freed, without a restart. Waits up to `patience` for readers to
    /// release the old handle; fails (and may be retried) if they do not, or if the file
    /// cannot be opened yet. Meanwhile operations fail with [`StoreError::Reopening`].
    pub fn reopen(&self, patience: Duration) -> Result<(), StoreError> {
        let _writer = match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut slot = match self.db.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(mut old) = slot.take() {
            let deadline = Instant::now() + patience;
            // The file lock goes only with the last handle: wait for readers to finish.
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(shared) if Instant::now() < deadline => {
                        old = shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(shared) => {
                        *slot = Some(shared);
                        return Err(StoreError::Reopening);
                    }
                }
            }
        }
        let (db, origin, head) = load(&self.path)?;
        if origin != self.origin {
            return Err(StoreError::Corrupt(
                "the reopened file holds another ledger".into(),
            ));
        }
        self.set_head(head);
        *slot = Some(Arc::new(db));
        self.poisoned.store(false, Ordering::Release);
        Ok(())
    }

    /// The open database handle, or [`StoreError::Reopening`] while it is being reopened.
    fn handle(&self) -> Result<Arc<Database>, StoreError> {
        let slot = match self.db.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        slot.clone().ok_or(StoreError::Reopening)
    }

    /// A read snapshot of every table (records, nodes, checkpoints and the appliance's
    /// projections).
    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.handle()?.begin_read()?)
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.handle()?
            .begin_write()
            .map_err(|e| self.write_failed(e.into()))
    }

    /// Notes a failed write: a storage error leaves the handle unusable until reopened.
    pub(crate) fn write_failed(&self, e: StoreError) -> StoreError {
        if matches!(e, StoreError::Database(_)) {
            self.poisoned.store(true, Ordering::Release);
            self.failing.store(true, Ordering::Release);
        }
        e
    }

    /// Notes a durable commit: storage takes writes.
    pub(crate) fn committed(&self) {
        self.failing.store(false, Ordering::Release);
    }
}

/// Opens the file and rebuilds the head from the stored tables: the last record (chain
/// head, timestamp), record 0 (ledger key) and one node per set bit of the size
/// (frontier) — O(log n) reads.
fn load(path: &Path) -> Result<(Database, String, Head), StoreError> {
    let db = Database::open(path)?;
    let txn = db.begin_read()?;
    let meta = match txn.open_table(schema::META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(StoreError::NotALedger),
        Err(e) => return Err(e.into()),
    };
    let origin = meta
        .get(schema::META_ORIGIN)?
        .ok_or(StoreError::NotALedger)?
        .value()
        .to_vec();
    let origin =
        String::from_utf8(origin).map_err(|_| StoreError::Corrupt("origin is not UTF-8".into()))?;
    let records = txn.open_table(schema::RECORDS)?;
    let (last_index, last_bytes) = match records.last()? {
        Some((k, v)) => (k.value(), v.value().to_vec()),
        None => return Err(StoreError::NotALedger),
    };
    let size = last_index
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("record index overflow".into()))?;
    let last = Record::decode(&last_bytes).map_err(|source| StoreError::Decode {
        index: last_index,
        source,
    })?;
    let first_bytes = records
        .get(0)?
        .ok_or_else(|| StoreError::Corrupt("record 0 is missing".into()))?
        .value()
        .to_vec();
    let first =
        Record::decode(&first_bytes).map_err(|source| StoreError::Decode { index: 0, source })?;
    let Event::Genesis(g) = &first.event else {
        return Err(StoreError::Corrupt("record 0 is not genesis".into()));
    };
    if g.origin != origin {
        return Err(StoreError::Corrupt(
            "meta origin differs from genesis origin".into(),
        ));
    }
    let mut keys =
        KeyRing::from_genesis(g).map_err(|r| StoreError::Corrupt(format!("genesis: {r}")))?;
    // Rotations are rare: their indices are listed in the meta table, so the
    // keys in force are rebuilt with one read per rotation, not a scan.
    let rotations = meta
        .get(schema::META_KEY_ROTATIONS)?
        .map(|v| v.value().to_vec())
        .unwrap_or_default();
    if rotations.len() % 8 != 0 {
        return Err(StoreError::Corrupt("key rotation list is not u64s".into()));
    }
    for chunk in rotations.chunks_exact(8) {
        let mut be = [0u8; 8];
        be.copy_from_slice(chunk);
        let index = u64::from_be_bytes(be);
        let bytes = records.get(index)?.ok_or_else(|| {
            StoreError::Corrupt(format!("key rotation record {index} is missing"))
        })?;
        let rec =
            Record::decode(bytes.value()).map_err(|source| StoreError::Decode { index, source })?;
        let Event::KeyRotated(r) = &rec.event else {
            return Err(StoreError::Corrupt(format!(
                "record {index} is listed as a key rotation but is not one"
            )));
        };
        keys.apply(r)
            .map_err(|e| StoreError::Corrupt(format!("key rotation {index}: {e}")))?;
    }
    let nodes = txn.open_table(schema::NODES)?;
    let mut hashes = Vec::new();
    for (level, index) in Frontier::positions(size) {
        let h = nodes
            .get((level, index))?
            .ok_or_else(|| StoreError::Corrupt(format!("tree node ({level}, {index}) is missing")))?
            .value();
        hashes.push(h);
    }
    let frontier = Frontier::from_parts(size, hashes)
        .ok_or_else(|| StoreError::Corrupt("frontier does not match size".into()))?;
    drop((meta, records, nodes));
    drop(txn);
    let head = Head {
        frontier,
        head_hash: chain_hash(&last_bytes),
        last_timestamp_ms: last.timestamp_ms,
        keys: Some(keys),
    };
    Ok((db, origin, head))
}

impl Ledger {
    /// The underlying database, so the appliance can read its projection tables (prefer
    /// [`Ledger::begin_read`]). Never write the tables in [`schema`] through it, and do not
    /// keep the handle: [`Ledger::reopen`] waits for it.
    pub fn database(&self) -> Result<Arc<Database>, StoreError> {
        self.handle()
    }

    /// The origin (checkpoint first line and key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The Ed25519 ledger key in force now: genesis' key, or the new key of the
    /// last ledger-role [`crate::event::KeyRotated`]. Checkpoints of the current size
    /// must be signed by it (FORMAT.md §7.1).
    pub fn ledger_key(&self) -> [u8; 32] {
        self.head()
            .keys
            .as_ref()
            .map(KeyRing::ledger_key)
            .unwrap_or_default()
    }

    /// Every key in force now (genesis keys with all rotations applied).
    pub fn keys_in_force(&self) -> Vec<crate::event::KeyInfo> {
        self.head()
            .keys
            .as_ref()
            .map(|k| k.keys().to_vec())
            .unwrap_or_default()
    }

    pub(crate) fn head(&self) -> Arc<Head> {
        match self.head.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_head(&self, head: Head) {
        let mut g = match self.head.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(head);
    }

    /// Number of committed records.
    pub fn size(&self) -> u64 {
        self.head().frontier.size()
    }

    /// Merkle root of all committed records.
    pub fn root(&self) -> Hash {
        self.head().frontier.root()
    }

    /// Size and root taken from one snapshot (never mix `size()` and `root()`
    /// across a concurrent append).
    pub fn size_and_root(&self) -> (u64, Hash) {
        let h = self.head();
        (h.frontier.size(), h.frontier.root())
    }

    /// SHA-256 of the last committed record's encoding (the next `prev_hash`).
    pub fn head_hash(&self) -> Hash {
        self.head().head_hash
    }

    /// Timestamp of the last committed record; appends must not go below it.
    pub fn head_timestamp_ms(&self) -> u64 {
        self.head().last_timestamp_ms
    }
}
