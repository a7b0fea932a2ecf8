//! Bundle reader: constant memory (one frame buffer, at most
//! `MAX_RECORD_FRAME` bytes), every length checked against its kind's limit
//! before anything is allocated, and never a panic on hostile input.

use std::io::{self, Read};

use super::{
    BUNDLE_VERSION, FRAME_CHECKPOINT, FRAME_HEADER, FRAME_RECORD, FRAME_TRAILER, MAGIC,
    MAX_CHECKPOINT_FRAME, MAX_HEADER_FRAME, MAX_RECORD_FRAME, TRAILER_LEN,
};
use crate::codec::Reader;
use crate::Hash;

/// The header frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Records the bundle announces.
    pub records: u64,
    /// Checkpoints the bundle announces.
    pub checkpoints: u64,
    /// Origin the bundle announces.
    pub origin: String,
}

/// The trailer frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Record frames in the bundle.
    pub records: u64,
    /// Checkpoint frames in the bundle.
    pub checkpoints: u64,
    /// Merkle root over all records.
    pub root: Hash,
    /// Chain hash of the last record.
    pub head_hash: Hash,
}

/// One frame after the header.
#[derive(Debug, PartialEq, Eq)]
pub enum BundleItem<'a> {
    /// A record's bytes.
    Record(&'a [u8]),
    /// A checkpoint note's text.
    Checkpoint(&'a str),
    /// The trailer; the file ended right after it.
    End(Trailer),
}

/// A bundle that cannot be read as one. `is_unreadable` separates "this is not
/// (all of) a bundle" from frames that were altered.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading failed.
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        /// Offset reached.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The file does not start with the bundle magic.
    #[error("not a credmint bundle (bad magic)")]
    NotABundle,
    /// Unknown bundle version.
    #[error("unsupported bundle version {0}")]
    UnsupportedVersion(u8),
    /// The file ends inside a frame or before the trailer.
    #[error("truncated at byte {offset}: {what}")]
    Truncated {
        /// Offset of the end of the file.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// A frame breaks the bundle's structure.
    #[error("malformed frame at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the frame.
        offset: u64,
        /// The broken rule.
        reason: &'static str,
    },
}

impl BundleError {
    /// True for "cannot read this as a bundle at all" (I/O, wrong magic or
    /// version, truncated); false for frames that are present but wrong.
    pub fn is_unreadable(&self) -> bool {
        !matches!(self, BundleError::Malformed { .. })
    }
}

/// Streams the frames of one bundle.
#[derive(Debug)]
pub struct BundleReader<R: Read> {
    input: R,
    offset: u64,
    buf: Vec<u8>,
    header: Header,
    done: bool,
}

impl<R: Read> BundleReader<R> {
    /// Reads and checks the magic, the version and the header frame.
    pub fn open(mut input: R) -> Result<Self, BundleError> {
        let mut magic = [0u8; 17];
        let n = read_full(&mut input, &mut magic, 0)?;
        if magic[..n.min(16)] != MAGIC[..n.min(16)] {
            return Err(BundleError::NotABundle);
        }
        if n < 17 {
            return Err(BundleError::Truncated {
                offset: n as u64,
                what: "magic and version",
            });
        }
        if magic[16] != BUNDLE_VERSION {
            return Err(BundleError::UnsupportedVersion(magic[16]));
        }
        let mut r = BundleReader {
            input,
            offset: 17,
            buf: Vec::new(),
            header: Header {
                records: 0,
                checkpoints: 0,
                origin: String::new(),
            },
            done: false,
        };
        let start = r.offset;
        let Some(kind) = r.read_frame()? else {
            return Err(BundleError::Truncated {
                offset: start,
                what: "header frame",
            });
        };
        if kind != FRAME_HEADER {
            return Err(BundleError::Malformed {
                offset: start,
                reason: "the first frame must be the header",
            });
        }
        let mut hr = Reader::new(&r.buf);
        let bad = |_| BundleError::Malformed {
            offset: start,
            reason: "header is not u64 records, u64 checkpoints, string<255> origin",
        };
        let records = hr.u64("header.records").map_err(bad)?;
        let checkpoints = hr.u64("header.checkpoints").map_err(bad)?;
        let origin = hr
            .str("header.origin", crate::event::MAX_ORIGIN)
            .map_err(bad)?
            .to_owned();
        hr.finish().map_err(bad)?;
        r.header = Header {
            records,
            checkpoints,
            origin,
        };
        Ok(r)
    }

    /// The header (announced counts, origin; untrusted until verified).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame. After `End`, returns `Ok(None)`.
    pub fn next_item(&mut self) -> Result<Option<BundleItem<'_>>, BundleError> {
        if self.done {
            return Ok(None);
        }
        let start = self.offset;
        let Some(kind) = self.read_frame()? else {
            return Err(BundleError::Truncated {
                offset: self.offset,
                what: "trailer (the file ends before it)",
            });
        };
        match kind {
            FRAME_RECORD => Ok(Some(BundleItem::Record(&self.buf))),
            FRAME_CHECKPOINT => match std::str::from_utf8(&self.buf) {
                Ok(text) => Ok(Some(BundleItem::Checkpoint(text))),
                Err(_) => Err(BundleError::Malformed {
                    offset: start,
                    reason: "checkpoint is not UTF-8",
                }),
            },
            FRAME_TRAILER => {
                let trailer = parse_trailer(&self.buf).ok_or(BundleError::Malformed {
                    offset: start,
                    reason: "trailer is not u64, u64, hash, hash",
                })?;
                let mut probe = [0u8; 1];
                if read_full(&mut self.input, &mut probe, self.offset)? != 0 {
                    return Err(BundleError::Malformed {
                        offset: self.offset,
                        reason: "bytes after the trailer",
                    });
                }
                self.done = true;
                Ok(Some(BundleItem::End(trailer)))
            }
            FRAME_HEADER => Err(BundleError::Malformed {
                offset: start,
                reason: "a second header",
            }),
            _ => Err(BundleError::Malformed {
                offset: start,
                reason: "unknown frame kind",
            }),
        }
    }

    /// Reads one frame into `buf`; `None` at a clean end of file.
    fn read_frame(&mut self) -> Result<Option<u8>, BundleError> {
        let start = self.offset;
        let mut head = [0u8; 5];
        let n = read_full(&mut self.input, &mut head, self.offset)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 5 {
            return Err(BundleError::Truncated {
                offset: start + n as u64,
                what: "frame kind and length",
            });
        }
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let max = match kind {
            FRAME_HEADER => MAX_HEADER_FRAME,
            FRAME_RECORD => MAX_RECORD_FRAME,
            FRAME_CHECKPOINT => MAX_CHECKPOINT_FRAME,
            FRAME_TRAILER => TRAILER_LEN,
            _ => {
                return Err(BundleError::Malformed {
                    offset: start,
                    reason: "unknown frame kind",
                })
            }
        };
        if len > max {
            return Err(BundleError::Malformed {
                offset: start,
                reason: "frame longer than its kind allows",
            });
        }
        self.offset += 5;
        // `len` is bounded above, so this allocation is too; the buffer is reused.
        self.buf.resize(len, 0);
        let got = read_full(&mut self.input, &mut self.buf, self.offset)?;
        self.offset += got as u64;
        if got < len {
            return Err(BundleError::Truncated {
                offset: self.offset,
                what: "frame payload",
            });
        }
        Ok(Some(kind))
    }
}

fn parse_trailer(b: &[u8]) -> Option<Trailer> {
    let mut r = Reader::new(b);
    let t = Trailer {
        records: r.u64("trailer.records").ok()?,
        checkpoints: r.u64("trailer.checkpoints").ok()?,
        root: r.hash("trailer.root").ok()?,
        head_hash: r.hash("trailer.head_hash").ok()?,
    };
    r.finish().ok()?;
    Some(t)
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<usize, BundleError> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(BundleError::Io {
                    offset: offset + n as u64,
                    source,
                })
            }
        }
    }
    Ok(n)
}
