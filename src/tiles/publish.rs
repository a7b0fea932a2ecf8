//! Writes the ledger's C2SP tlog-tiles into a directory (FORMAT.md §15), crash-safely.
//!
//! Invariants:
//! - Every tile path has exactly one correct content (a partial tile `.p/<W>` is fixed by
//!   its width), so a file that exists is compared, never rewritten; different bytes are a
//!   [`PublishError::Conflict`] and publication stops (tampering, or another log's files).
//! - New files are written to a temporary name, fsynced and hard-linked into place (link(2)
//!   refuses to replace an existing file), and their directories are fsynced **before** the
//!   `checkpoint` file is replaced: a reader that sees a checkpoint finds all its tiles.
//! - Restart resumes from the directory's `checkpoint`, after checking it is a tree of this
//!   ledger (origin, size, root); files written after it by an interrupted run are
//!   re-derived and compared, so a crash at any point is harmless.
//!
//! It only reads the ledger (one snapshot per run) and never blocks appends.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use credmint_ledger::store::Snapshot;
use credmint_ledger::tiles::{self, Tile, TileError};
use credmint_ledger::{Checkpoint, Ledger, StoreError};

/// Why a publication run stopped. The directory is left at its last consistent state.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("reading the ledger: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tile(#[from] TileError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists with other bytes than this ledger's; refusing to overwrite it (tampered, or another log's directory)", path.display())]
    Conflict { path: PathBuf },
    #[error("{} is not a checkpoint of this ledger: {reason}", path.display())]
    ForeignCheckpoint { path: PathBuf, reason: String },
}

impl PublishError {
    /// Short fixed category for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::Store(_) => "store",
            PublishError::Tile(TileError::EntryTooLarge { .. }) => "entry_too_large",
            PublishError::Tile(_) => "tile",
            PublishError::Io { .. } => "io",
            PublishError::Conflict { .. } => "conflict",
            PublishError::ForeignCheckpoint { .. } => "foreign_checkpoint",
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Size of the directory's checkpoint before the run.
    pub from: u64,
    /// Size after it (equal to `from` if there was nothing new).
    pub to: u64,
    /// Files newly written (tiles, bundles, checkpoint).
    pub written: usize,
}

/// Tiles are public: readable by the web server's user whatever the appliance's umask
/// (the systemd unit sets 0077). Only directories the publisher creates are changed.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

fn public(path: &Path, mode: u32) -> Result<(), PublishError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Publishes every stored checkpoint newer than the directory's, with the tiles each needs.
pub fn publish(ledger: &Ledger, dir: &Path) -> Result<Published, PublishError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(dir))?;
        public(dir, DIR_MODE)?;
    }
    let snap = ledger.snapshot()?;
    let from = published_size(ledger, &snap, dir)?;
    let target = match snap.latest_checkpoint_size()? {
        Some(t) if t > from => t,
        _ => {
            return Ok(Published {
                from,
                to: from,
                written: 0,
            })
        }
    };
    // Partial tiles for every checkpointed size (the spec requires them), except those a
    // full tile of the target size already supersedes (the spec lets a log delete those).
    let mut wanted = BTreeSet::new();
    let mut note = None;
    let mut prev = from;
    for item in snap.checkpoints_from(from + 1)? {
        let (size, text) = item?;
        if size > target {
            break;
        }
        wanted.extend(
            tiles::new_tiles(prev, size)
                .into_iter()
                .filter(|t| !tiles::superseded(t, target)),
        );
        prev = size;
        note = Some(text);
    }
    let mut writer = Writer {
        dir,
        touched: BTreeSet::new(),
        written: 0,
    };
    for tile in &wanted {
        let level = tile.level * 8;
        let first = tile.first_node();
        let nodes = snap.nodes(level, first, u64::from(tile.width))?;
        let hashes = tiles::tile_bytes(tile, &mut |l, i| {
            i.checked_sub(first)
                .and_then(|k| usize::try_from(k).ok())
                .and_then(|k| nodes.get(k))
                .filter(|_| l == level)
                .copied()
                .ok_or_else(|| StoreError::Corrupt(format!("tile node ({l}, {i}) not read")))
        })?;
        writer.immutable(&tile.path(), &hashes)?;
        if tile.level == 0 {
            writer.immutable(&tile.entries_path(), &bundle(&snap, tile)?)?;
        }
    }
    writer.sync_dirs()?;
    if let Some(note) = note {
        writer.replace("checkpoint", note.as_bytes())?;
    }
    Ok(Published {
        from,
        to: target,
        written: writer.written,
    })
}

/// The entry bundle of a level-0 tile: its records, each `u16`-length-prefixed.
fn bundle(snap: &Snapshot, tile: &Tile) -> Result<Vec<u8>, PublishError> {
    let first = tile.first_node();
    let mut out = Vec::new();
    let mut count = 0u16;
    for raw in snap.records(first)?.take(usize::from(tile.width)) {
        let raw = raw?;
        if raw.index != first + u64::from(count) {
            return Err(StoreError::Corrupt(format!(
                "record table has index {} where {} was expected",
                raw.index,
                first + u64::from(count)
            ))
            .into());
        }
        tiles::push_entry(&mut out, raw.index, &raw.bytes)?;
        count += 1;
    }
    if count != tile.width {
        return Err(
            StoreError::Corrupt(format!("records missing below index {}", first + 256)).into(),
        );
    }
    Ok(out)
}

/// Size of the directory's `checkpoint` (0 if absent), after checking that it is a tree
/// of this ledger: same origin, a size the ledger has, and the ledger's root at that size.
fn published_size(ledger: &Ledger, snap: &Snapshot, dir: &Path) -> Result<u64, PublishError> {
    let path = dir.join("checkpoint");
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(&path)(e)),
    };
    let foreign = |reason: String| PublishError::ForeignCheckpoint {
        path: path.clone(),
        reason,
    };
    let text = String::from_utf8(text).map_err(|_| foreign("not UTF-8".into()))?;
    let body = text
        .split_once("\n\n")
        .map(|(b, _)| format!("{b}\n"))
        .ok_or_else(|| foreign("not a signed note".into()))?;
    let cp = Checkpoint::parse_body(&body).map_err(|e| foreign(e.to_string()))?;
    if cp.origin != ledger.origin() {
        return Err(foreign(format!("origin {:?}", cp.origin)));
    }
    if cp.size > snap.size()? {
        return Err(foreign(format!("size {} is beyond the ledger", cp.size)));
    }
    if cp.root != snap.root_at(cp.size)? {
        return Err(foreign(format!(
            "root at size {} differs from the ledger's",
            cp.size
        )));
    }
    Ok(cp.size)
}

struct Writer<'a> {
    dir: &'a Path,
    /// Directories whose entries changed (need an fsync before the checkpoint moves).
    touched: BTreeSet<PathBuf>,
    written: usize,
}

impl Writer<'_> {
    /// Writes `rel` unless it exists; an existing file must hold exactly `bytes`.
    fn immutable(&mut self, rel: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let path = self.dir.join(rel);
        if self.same_as_existing(&path, bytes)? {
            return Ok(());
        }
        let tmp = self.temp(&path, bytes)?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => self.written += 1,
            // Appeared meanwhile: it must still be the right bytes.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.same_as_existing(&path, bytes)?;
            }
            Err(e) => return Err(io(&path)(e)),
        }
        Ok(())
    }

    /// Atomically replaces `rel` (the mutable `checkpoint`), then fsyncs its directory.
    fn replace(&mut self, rel: &str, bytes: &[u8]) -> Result<(), PublishError> {
        let path = self.dir.join(rel);
        let tmp = self.temp(&path, bytes)?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        self.written += 1;
        self.sync_dirs()
    }

    fn same_as_existing(&self, path: &Path, bytes: &[u8]) -> Result<bool, PublishError> {
        match fs::read(path) {
            Ok(existing) if existing == bytes => Ok(true),
            Ok(_) => Err(PublishError::Conflict {
                path: path.to_path_buf(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// `bytes` in a fsynced temporary file beside `path` (same filesystem, so linking or
    /// renaming it is atomic). Dot-prefixed: never a tile name.
    fn temp(&mut self, path: &Path, bytes: &[u8]) -> Result<PathBuf, PublishError> {
        let parent = path.parent().unwrap_or(self.dir);
        if !parent.exists() {
            fs::create_dir_all(parent).map_err(io(parent))?;
            let mut d = parent;
            while d != self.dir && d.starts_with(self.dir) {
                public(d, DIR_MODE)?;
                d = d.parent().unwrap_or(self.dir);
            }
        }
        let mut dir = parent;
        while dir.starts_with(self.dir) {
            self.touched.insert(dir.to_path_buf());
            match dir.parent() {
                Some(p) if dir != self.dir => dir = p,
                _ => break,
            }
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        Ok(tmp)
    }

    fn sync_dirs(&mut self) -> Result<(), PublishError> {
        // Deepest first, so a new directory is durable before its parent's entry for it.
        for dir in std::mem::take(&mut self.touched).iter().rev() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credmint_ledger::event::{CaImported, Event, Genesis, KeyAlgorithm, KeyInfo, KeyRole};
    use credmint_ledger::{DalekSigner, NewEntry, Signer};

    fn entry(event: Event) -> NewEntry {
        NewEntry {
            timestamp_ms: 1_700_000_000_000,
            actor: "system:init".into(),
            event,
        }
    }

    /// A record the u16 framing cannot carry stops publication at the last checkpoint
    /// before it, with an error naming the record; nothing is written for the new size.
    #[test]
    fn a_record_over_65535_bytes_stops_publication_at_the_previous_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let signer = DalekSigner::from_seed([3u8; 32]);
        let ca = KeyInfo {
            role: KeyRole::Ca,
            algorithm: KeyAlgorithm::EcdsaP256,
            label: "ca".into(),
            spki_der: vec![0x30, 0x59, 0x01, 0x02],
        };
        let genesis = Event::Genesis(Genesis {
            origin: "tiles.test/ledger".into(),
            keys: vec![
                ca.clone(),
                KeyInfo::ed25519(KeyRole::Ledger, "ledger", &signer.public_key()),
            ],
            config_digest: [0; 32],
            ca_certificate_der: vec![0x30, 0x00],
        });
        let ledger = Ledger::create(&tmp.path().join("l.redb"), entry(genesis)).unwrap();
        ledger.sign_checkpoint(&signer).unwrap();
        let dir = tmp.path().join("tiles");
        assert_eq!(publish(&ledger, &dir).unwrap().to, 1);

        let big = Event::CaImported(CaImported {
            key: ca,
            ca_certificate_der: vec![0x30; 65_536],
            issuer_chain_der: vec![vec![0x30; 16]],
        });
        ledger.append_batch(vec![entry(big)]).unwrap();
        ledger.sign_checkpoint(&signer).unwrap();
        let before = fs::read(dir.join("checkpoint")).unwrap();
        let err = publish(&ledger, &dir).unwrap_err();
        assert!(
            matches!(err, PublishError::Tile(TileError::EntryTooLarge { index: 1, len }) if len > 65_535),
            "{err}"
        );
        assert_eq!(err.kind(), "entry_too_large");
        assert_eq!(fs::read(dir.join("checkpoint")).unwrap(), before);
        assert!(!dir.join("tile/entries/000.p/2").exists());
    }
}
