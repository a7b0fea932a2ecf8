//! The export bundle (FORMAT.md §12): one self-contained, length-framed file
//! with every record, every checkpoint and (through genesis and the
//! `KeyRotated` records) the key history, written from one read snapshot with
//! constant memory, and read back with constant memory by the auditor.
//!
//! This room only moves bytes: the writer never judges what it copies and the
//! reader never trusts what it parses; `crate::audit` verifies.

mod reader;
mod writer;

use std::io::{self, Write};
use std::path::Path;

pub use reader::{BundleError, BundleItem, BundleReader, Header, Trailer};
pub use writer::BundleWriter;

use crate::error::StoreError;
use crate::record::chain_hash;
use crate::store::Ledger;
use crate::Hash;

/// First 16 bytes of every bundle.
pub const MAGIC: &[u8; 16] = b"credmint-bundle\n";
/// The byte after the magic. Bump on any change to §12.
pub const BUNDLE_VERSION: u8 = 1;
/// Frame kinds.
pub const FRAME_HEADER: u8 = 0x01;
/// A record's canonical encoding (FORMAT.md §2).
pub const FRAME_RECORD: u8 = 0x02;
/// A signed checkpoint note (UTF-8 text).
pub const FRAME_CHECKPOINT: u8 = 0x03;
/// The last frame: counts, root and head.
pub const FRAME_TRAILER: u8 = 0x04;
/// Largest record frame: a maximal event body plus the record's fixed fields and actor.
pub const MAX_RECORD_FRAME: usize = crate::event::MAX_EVENT_BODY + 1024;
/// Largest checkpoint frame (a note with up to 100 signature lines fits easily).
pub const MAX_CHECKPOINT_FRAME: usize = 65536;
/// Largest header frame: two u64 counts and a `string<255>` origin.
pub const MAX_HEADER_FRAME: usize = 8 + 8 + 4 + crate::event::MAX_ORIGIN;
/// Exact trailer frame length: two u64 counts and two hashes.
pub const TRAILER_LEN: usize = 8 + 8 + 32 + 32;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Origin of the ledger.
    pub origin: String,
    /// Records in the bundle (= the size of its last checkpoint).
    pub records: u64,
    /// Checkpoints in the bundle.
    pub checkpoints: u64,
    /// Merkle root over the exported records (equals the last checkpoint's root).
    pub root: Hash,
    /// Chain hash of the last exported record.
    pub head_hash: Hash,
    /// Records committed after the last signed checkpoint, left out of the
    /// bundle because no signature covers them yet (sign a checkpoint first).
    pub unsigned_tail: u64,
    /// Bundle size in bytes.
    pub bytes: u64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the ledger failed.
    #[error("reading the ledger: {0}")]
    Store(#[from] StoreError),
    /// Writing the bundle failed.
    #[error("writing the bundle: {0}")]
    Io(#[from] io::Error),
    /// The ledger has no signed checkpoint, so nothing could be verified.
    #[error("the ledger has no signed checkpoint: sign one before exporting")]
    NoCheckpoint,
}

/// Writes the bundle of `ledger` to `out` from one read snapshot, so appends
/// running meanwhile cannot tear it. The bundle ends at the latest signed
/// checkpoint: records appended after it are left out (`unsigned_tail`), so
/// every exported record is covered by a signature. Memory is constant
/// (one record at a time); `out` should be buffered.
pub fn export_bundle(ledger: &Ledger, out: &mut impl Write) -> Result<ExportSummary, ExportError> {
    let snap = ledger.snapshot()?;
    let Some(size) = snap.latest_checkpoint_size()? else {
        return Err(ExportError::NoCheckpoint);
    };
    let checkpoint_count = snap.checkpoint_count(size)?;
    let mut w = BundleWriter::new(out, ledger.origin(), size, checkpoint_count)?;
    let mut checkpoints = snap.checkpoints()?.peekable();
    let mut head_hash = crate::record::ZERO_HASH;
    for item in snap.records(0)? {
        let raw = item?;
        let position = w.records_written();
        if position >= size {
            break;
        }
        if raw.index != position {
            return Err(StoreError::Corrupt(format!(
                "record table key {} found where {position} was expected",
                raw.index
            ))
            .into());
        }
        w.record(&raw.bytes)?;
        if w.records_written() == size {
            head_hash = chain_hash(&raw.bytes);
        }
        while let Some(Ok((cp_size, _))) = checkpoints.peek() {
            if *cp_size > w.records_written() {
                break;
            }
            let Some(Ok((cp_size, text))) = checkpoints.next() else {
                break;
            };
            if cp_size != w.records_written() {
                return Err(StoreError::Corrupt(format!(
                    "checkpoint stored for size {cp_size}, which no record completes"
                ))
                .into());
            }
            w.checkpoint(&text)?;
        }
        if let Some(Err(_)) = checkpoints.peek() {
            if let Some(Err(e)) = checkpoints.next() {
                return Err(e.into());
            }
        }
    }
    if w.records_written() != size {
        return Err(StoreError::Corrupt(format!(
            "checkpoint at size {size} but only {} records",
            w.records_written()
        ))
        .into());
    }
    let root = snap.root_at(size)?;
    let total_records = snap.size()?;
    let (_, bytes) = w.finish(&root, &head_hash)?;
    Ok(ExportSummary {
        origin: ledger.origin().to_owned(),
        records: size,
        checkpoints: checkpoint_count,
        root,
        head_hash,
        unsigned_tail: total_records.saturating_sub(size),
        bytes,
    })
}

/// Exports to `path` durably: writes `path`'s directory's temp file
/// `.<name>.tmp-<pid>`, fsyncs it, renames it over `path`, then fsyncs the
/// directory. A crash leaves either the old file or the complete new one
/// (and possibly a stale temp file, removed on the next export's failure
/// path only). Known gap: on filesystems without directory fsync (some
/// network filesystems) the rename itself may not be durable.
pub fn export_to_file(ledger: &Ledger, path: &Path) -> Result<ExportSummary, ExportError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut buf = io::BufWriter::with_capacity(1 << 20, file);
        let summary = export_bundle(ledger, &mut buf)?;
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(&dir)?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
