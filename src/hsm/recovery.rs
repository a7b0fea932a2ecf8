//! A verified recovery copy of the embedded SoftHSM2 token store.
//!
//! SoftHSM 2.6 rewrites `token.object` in place on every login (open, `ftruncate(0)`,
//! buffered write, no fsync, no rename) to update the PIN-count flags. A `kill -9` or power
//! loss in that window leaves a short or empty file; SoftHSM then reports the token as
//! uninitialised and every key in it is lost for good (keys cannot leave the token by
//! design). Login cannot be avoided, so credmint keeps a copy of each of its token's object
//! files, taken only after the token has just proven itself (login and every key found),
//! written atomically (temporary file, fsync, rename, fsync of the directory). Before the
//! module is loaded, any live object file that no longer parses is replaced from its copy.
//!
//! The copy is as safe as the original: SoftHSM keeps private key material encrypted under
//! a key derived from the user PIN, and the copy sits next to the ledger in the 0700 data
//! directory. Only files that fail to parse are restored, so a copy can never roll back a
//! good file (for example after a PIN change made with another tool).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// The object file SoftHSM rewrites on login; it also names the token (its label).
const TOKEN_OBJECT: &str = "token.object";
/// Vendor attribute under which SoftHSM's file store keeps the token label.
const CKA_OS_TOKENLABEL: u64 = 0x8000_5349;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("token recovery copy {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One live object file replaced from its copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub file: PathBuf,
    /// Size of the damaged live file (0 after a kill in the rewrite window).
    pub damaged_len: u64,
}

/// True when `bytes` is a well-formed SoftHSM file-store object: an 8-byte generation,
/// then attributes (type, kind, value) up to exactly the end of the file. A file cut inside
/// an attribute (including to zero bytes) fails; a cut exactly between two attributes is
/// caught by [`is_damaged`].
pub fn is_complete_object(bytes: &[u8]) -> bool {
    attributes(bytes).is_some()
}

/// True when the live file is not a whole version of the object `copy` holds: it does not
/// parse, or it lacks an attribute the copy has (SoftHSM writes attributes in type order
/// and never removes one, so a cut between two attributes loses the later ones).
pub fn is_damaged(live: &[u8], copy: &[u8]) -> bool {
    let Some(live) = attributes(live) else {
        return true;
    };
    let Some(copy) = attributes(copy) else {
        return false;
    };
    copy.iter()
        .any(|(ty, _, _)| !live.iter().any(|(t, _, _)| t == ty))
}

/// The attributes of an object file as (type, kind, value bytes), or None if it is cut or
/// malformed.
fn attributes(bytes: &[u8]) -> Option<Vec<(u64, u64, &[u8])>> {
    let mut r = Reader(bytes);
    r.u64()?; // generation counter
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let ty = r.u64()?;
        let kind = r.u64()?;
        let value = match kind {
            1 => r.take(1)?,
            2 => r.take(8)?,
            // byte string and attribute map: length-prefixed
            3 | 4 => {
                let len = usize::try_from(r.u64()?).ok()?;
                r.take(len)?
            }
            // mechanism set: count of 8-byte mechanism types
            5 => {
                let count = usize::try_from(r.u64()?).ok()?;
                r.take(count.checked_mul(8)?)?
            }
            _ => return None,
        };
        out.push((ty, kind, value));
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// The token label stored in a complete `token.object`, without PKCS#11 space padding.
fn token_label(bytes: &[u8]) -> Option<String> {
    attributes(bytes)?
        .into_iter()
        .find(|(ty, kind, _)| *ty == CKA_OS_TOKENLABEL && *kind == 3)
        .map(|(_, _, v)| String::from_utf8_lossy(v).trim_end().to_owned())
}

/// The token directory SoftHSM will use: `directories.tokendir` of the config file that
/// `SOFTHSM2_CONF` names (set by `prepare_softhsm` or by the operator).
pub fn configured_token_root() -> Option<PathBuf> {
    let conf = std::env::var_os("SOFTHSM2_CONF")?;
    let text = fs::read_to_string(conf).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "directories.tokendir").then(|| PathBuf::from(value.trim()))
    })
}

/// Object files of one token directory (the `.lock` files and `generation` are not needed:
/// SoftHSM recreates them).
fn object_files(dir: &Path) -> Result<Vec<PathBuf>, RecoveryError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "object") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Before the module loads: replaces every live object file of the tokens held in
/// `copies` that is damaged ([`is_damaged`]) with its copy (when the copy is whole). A missing live
/// directory is left alone: that is a lost token, which `serve` must report, not paper over.
pub fn restore_damaged(copies: &Path, token_root: &Path) -> Result<Vec<Restored>, RecoveryError> {
    let mut restored = Vec::new();
    let Ok(tokens) = fs::read_dir(copies) else {
        return Ok(restored);
    };
    for token in tokens {
        let copy_dir = token.map_err(io(copies))?.path();
        let Some(name) = copy_dir.file_name() else {
            continue;
        };
        let live_dir = token_root.join(name);
        if !copy_dir.is_dir() || !live_dir.is_dir() {
            continue;
        }
        for copy in object_files(&copy_dir)? {
            let Some(file_name) = copy.file_name() else {
                continue;
            };
            let live = live_dir.join(file_name);
            let Ok(bytes) = fs::read(&live) else {
                continue;
            };
            let good = fs::read(&copy).map_err(io(&copy))?;
            if !is_complete_object(&good) || !is_damaged(&bytes, &good) {
                continue;
            }
            write_atomically(&live, &good)?;
            restored.push(Restored {
                file: live,
                damaged_len: bytes.len() as u64,
            });
        }
    }
    Ok(restored)
}

/// After the token has proven itself (logged in, every key found): makes the live files
/// durable (SoftHSM never fsyncs) and brings the copy of the token labelled `label` up to
/// date. Copies of files the token no longer has are removed. Returns the files written.
pub fn refresh(copies: &Path, token_root: &Path, label: &str) -> Result<usize, RecoveryError> {
    let mut written = 0;
    for live_dir in token_dirs_labelled(token_root, label)? {
        let Some(name) = live_dir.file_name() else {
            continue;
        };
        let copy_dir = copies.join(name);
        create_private_dir(&copy_dir)?;
        let live_files = object_files(&live_dir)?;
        for live in &live_files {
            let bytes = fs::read(live).map_err(io(live))?;
            if !is_complete_object(&bytes) {
                continue;
            }
            // SoftHSM's own rewrite is not durable; make what we just verified survive
            // power loss too.
            File::open(live)
                .and_then(|f| f.sync_all())
                .map_err(io(live))?;
            let copy = copy_dir.join(live.file_name().unwrap_or_default());
            if fs::read(&copy).ok().as_deref() == Some(&bytes[..]) {
                continue;
            }
            write_atomically(&copy, &bytes)?;
            written += 1;
        }
        crate::fsutil::sync_dir(&live_dir).map_err(io(&live_dir))?;
        for copy in object_files(&copy_dir)? {
            if !live_files.iter().any(|l| l.file_name() == copy.file_name()) {
                fs::remove_file(&copy).map_err(io(&copy))?;
            }
        }
    }
    Ok(written)
}

/// Token directories under `root` whose complete `token.object` carries `label`.
fn token_dirs_labelled(root: &Path, label: &str) -> Result<Vec<PathBuf>, RecoveryError> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root).map_err(io(root))? {
        let dir = entry.map_err(io(root))?.path();
        let Ok(bytes) = fs::read(dir.join(TOKEN_OBJECT)) else {
            continue;
        };
        if token_label(&bytes).as_deref() == Some(label) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

fn create_private_dir(dir: &Path) -> Result<(), RecoveryError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))
}

/// Replaces `path` durably and atomically (mode 0600: the recovery files name the token).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RecoveryError> {
    crate::fsutil::write_atomically(path, bytes, 0o600).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An object file as SoftHSM writes it: generation, then (type, kind, value).
    fn object(label: &str) -> Vec<u8> {
        let mut out = 7u64.to_be_bytes().to_vec();
        let mut attr = |ty: u64, kind: u64, value: &[u8]| {
            out.extend(ty.to_be_bytes());
            out.extend(kind.to_be_bytes());
            if kind == 3 || kind == 4 {
                out.extend((value.len() as u64).to_be_bytes());
            }
            if kind == 5 {
                out.extend((value.len() as u64 / 8).to_be_bytes());
            }
            out.extend(value);
        };
        attr(CKA_OS_TOKENLABEL, 3, format!("{label:<32}").as_bytes());
        attr(0x8000_534b, 2, &0x42du64.to_be_bytes());
        attr(0x1, 1, &[0xff]);
        attr(0x2, 5, &[0u8; 16]);
        attr(0x3, 4, &[1, 2, 3]);
        out
    }

    #[test]
    fn reads_the_label_of_a_complete_token_object() {
        assert_eq!(token_label(&object("t-x")).as_deref(), Some("t-x"));
    }

    #[test]
    fn a_later_whole_version_is_not_damaged() {
        let copy = object("t");
        let mut later = copy.clone();
        later[7] = 8;
        assert!(!is_damaged(&later, &copy));
        assert!(!is_damaged(&copy, &copy));
    }

    proptest! {
        /// Every cut of a complete object, down to zero bytes, is detected.
        #[test]
        fn every_cut_is_detected(cut in 0usize..200) {
            let full = object("label");
            prop_assume!(cut < full.len());
            prop_assert!(is_damaged(&full[..cut], &full));
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = is_complete_object(&bytes);
        }
    }

    #[test]
    fn restores_only_damaged_files_and_refresh_tracks_the_live_token() {
        let root = tempfile::tempdir().unwrap();
        let tokens = root.path().join("tokens");
        let copies = root.path().join("copies");
        let live = tokens.join("uuid-1");
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join(TOKEN_OBJECT), object("mine")).unwrap();
        fs::write(live.join("key.object"), object("key")).unwrap();
        // Another token in the same store is not ours and is not copied.
        fs::create_dir_all(tokens.join("uuid-2")).unwrap();
        fs::write(tokens.join("uuid-2").join(TOKEN_OBJECT), object("other")).unwrap();

        assert_eq!(refresh(&copies, &tokens, "mine").unwrap(), 2);
        assert!(!copies.join("uuid-2").exists());
        assert_eq!(refresh(&copies, &tokens, "mine").unwrap(), 0, "unchanged");

        // The login rewrite cut short: restored. A good file is never touched.
        fs::write(live.join(TOKEN_OBJECT), b"").unwrap();
        let mut newer = object("key");
        newer[7] = 9; // a later generation, still complete
        fs::write(live.join("key.object"), &newer).unwrap();
        let restored = restore_damaged(&copies, &tokens).unwrap();
        assert_eq!(
            restored,
            vec![Restored {
                file: live.join(TOKEN_OBJECT),
                damaged_len: 0
            }]
        );
        assert_eq!(fs::read(live.join(TOKEN_OBJECT)).unwrap(), object("mine"));
        assert_eq!(fs::read(live.join("key.object")).unwrap(), newer);

        // A removed key's copy goes with it.
        fs::remove_file(live.join("key.object")).unwrap();
        refresh(&copies, &tokens, "mine").unwrap();
        assert!(!copies.join("uuid-1").join("key.object").exists());
    }
}
