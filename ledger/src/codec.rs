//! Canonical byte encoding helpers shared by every hashed or signed structure.
//!
//! Everything in the ledger that is hashed, chained or signed is written with
//! these primitives, so that exactly one byte string exists for each value:
//! fixed-width big-endian integers, `u32` length prefixes with an explicit
//! per-field maximum, and a [`Reader`] that refuses to finish while bytes are
//! left over. An independent verifier re-implements these few rules from
//! `FORMAT.md`; keep them boring.
//!
//! This module must never panic on any input: every read is bounds-checked and
//! reports the field it was reading.

use crate::error::DecodeError;

/// Appends canonical encodings to a byte vector.
///
/// Writing cannot fail; callers validate limits before writing (see
/// `Record::validate`) and the store re-decodes every record it writes, so a
/// value that breaks a limit is refused before it reaches disk.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts an empty encoding.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes fixed-width bytes with no length prefix (hashes, fingerprints).
    pub fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// Writes a `u32` big-endian length followed by the bytes.
    ///
    /// Lengths above `u32::MAX` are clamped in the prefix, which makes the
    /// encoding undecodable; validation refuses such values long before.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
    }

    /// Writes a UTF-8 string as a length-prefixed byte string.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// Writes a `vec<string>`: count, then each string.
    pub fn str_list(&mut self, items: &[String]) {
        self.count(items.len());
        for item in items {
            self.str(item);
        }
    }

    /// Writes a boolean as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Writes a vector element count as a big-endian `u32`.
    pub fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Returns the finished encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a canonical encoding; every method names the field it reads so a
/// failure points at the broken byte range.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read, for error messages.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                field,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a 32-byte value with no length prefix.
    pub fn hash(&mut self, field: &'static str) -> Result<[u8; 32], DecodeError> {
        self.array(field)
    }

    /// Reads a `u32`-length-prefixed byte string of at most `max` bytes.
    ///
    /// The limit is checked before any allocation, so a hostile length prefix
    /// cannot make the reader reserve memory.
    pub fn bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(len, field)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let raw = self.bytes(field, max)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// Reads a non-empty length-prefixed UTF-8 string of at most `max` bytes.
    pub fn non_empty_str(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a str, DecodeError> {
        let s = self.str(field, max)?;
        if s.is_empty() {
            return Err(DecodeError::Invalid {
                field,
                reason: "must not be empty",
            });
        }
        Ok(s)
    }

    /// Reads a `vec<string<max_len>, max_count>`.
    pub fn str_list(
        &mut self,
        field: &'static str,
        max_count: usize,
        max_len: usize,
    ) -> Result<Vec<String>, DecodeError> {
        let n = self.count(field, max_count)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.str(field, max_len)?.to_owned());
        }
        Ok(out)
    }

    /// Reads a boolean byte; only 0 and 1 are valid (one encoding per value).
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid {
                field,
                reason: "boolean must be 0 or 1",
            }),
        }
    }

    /// Reads a `u32` element count of at most `max`.
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(DecodeError::TooMany {
                field,
                count: n,
                max,
            });
        }
        Ok(n)
    }

    /// Ends decoding; any byte left over is an error, because two encodings
    /// of one value would give two hashes.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

/// Checks that a string slated for writing respects the limit its decoder
/// enforces, so the writer never produces bytes the verifier rejects.
pub(crate) fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooLong { field, len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_and_fixed_width() {
        let mut w = Writer::new();
        w.u8(1);
        w.u16(0x0203);
        w.u32(0x0405_0607);
        w.u64(0x0809_0a0b_0c0d_0e0f);
        w.str("hi");
        let bytes = w.finish();
        assert_eq!(
            hex::encode(&bytes),
            "0102030405060708090a0b0c0d0e0f000000026869"
        );
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").ok(), Some(1));
        assert_eq!(r.u16("b").ok(), Some(0x0203));
        assert_eq!(r.u32("c").ok(), Some(0x0405_0607));
        assert_eq!(r.u64("d").ok(), Some(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.str("e", 2).ok(), Some("hi"));
        assert!(r.finish().is_ok());
    }

    #[test]
    fn limits_trailing_bytes_and_utf8_are_enforced() {
        let mut w = Writer::new();
        w.str("abc");
        let bytes = w.finish();
        assert!(matches!(
            Reader::new(&bytes).str("s", 2),
            Err(DecodeError::TooLong { .. })
        ));
        let mut r = Reader::new(&bytes);
        assert!(r.u8("x").is_ok());
        assert!(matches!(
            r.finish(),
            Err(DecodeError::TrailingBytes { count: 6 })
        ));
        let bad = [0, 0, 0, 1, 0xff];
        assert!(matches!(
            Reader::new(&bad).str("s", 8),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(Reader::new(&huge).bytes("b", usize::MAX).is_err());
    }
}
