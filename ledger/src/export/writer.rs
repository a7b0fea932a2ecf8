//! Bundle writer: magic, version, header, frames, trailer (FORMAT.md §12).
//! It frames what it is given; ordering and validity are the caller's job
//! (and the verifier's to check).

use std::io::{self, Write};

use super::{
    BUNDLE_VERSION, FRAME_CHECKPOINT, FRAME_HEADER, FRAME_RECORD, FRAME_TRAILER, MAGIC,
    MAX_CHECKPOINT_FRAME, MAX_RECORD_FRAME,
};
use crate::codec::Writer;
use crate::Hash;

/// Writes one bundle to `out`, frame by frame.
#[derive(Debug)]
pub struct BundleWriter<W: Write> {
    out: W,
    records: u64,
    checkpoints: u64,
    bytes: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Writes the magic, the version byte and the header frame announcing
    /// `records` records and `checkpoints` checkpoints.
    pub fn new(mut out: W, origin: &str, records: u64, checkpoints: u64) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        out.write_all(&[BUNDLE_VERSION])?;
        let mut w = BundleWriter {
            out,
            records: 0,
            checkpoints: 0,
            bytes: (MAGIC.len() + 1) as u64,
        };
        let mut h = Writer::new();
        h.u64(records);
        h.u64(checkpoints);
        h.str(origin);
        w.frame(FRAME_HEADER, &h.finish())?;
        Ok(w)
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(payload)?;
        self.bytes += 5 + u64::from(len);
        Ok(())
    }

    /// Appends a record frame (the record's canonical encoding).
    pub fn record(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > MAX_RECORD_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record longer than the bundle allows",
            ));
        }
        self.frame(FRAME_RECORD, bytes)?;
        self.records += 1;
        Ok(())
    }

    /// Appends a checkpoint frame (signed note text); it belongs right after
    /// the record that completes its size.
    pub fn checkpoint(&mut self, note_text: &str) -> io::Result<()> {
        if note_text.len() > MAX_CHECKPOINT_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "checkpoint longer than the bundle allows",
            ));
        }
        self.frame(FRAME_CHECKPOINT, note_text.as_bytes())?;
        self.checkpoints += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records_written(&self) -> u64 {
        self.records
    }

    /// Writes the trailer (counts of frames written, `root`, `head_hash`),
    /// flushes, and returns the output and the bundle's length in bytes.
    pub fn finish(mut self, root: &Hash, head_hash: &Hash) -> io::Result<(W, u64)> {
        let mut t = Writer::new();
        t.u64(self.records);
        t.u64(self.checkpoints);
        t.fixed(root);
        t.fixed(head_hash);
        self.frame(FRAME_TRAILER, &t.finish())?;
        self.out.flush()?;
        Ok((self.out, self.bytes))
    }
}
