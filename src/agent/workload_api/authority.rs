//! `AuthorityFix<S>`: an AsyncRead/AsyncWrite wrapper for the server side of an HTTP/2
//! (h2c, prior knowledge) connection that makes an invalid `:authority` acceptable to h2.
//!
//! Why: grpc-core >= 1.57 (grpcio / py-spiffe, grpc C++/Ruby/PHP…) sends the percent-encoded
//! socket path as `:authority` on unix: channels (e.g. `tmp%2Fwlapi%2Fwl.sock`), grpc-java
//! sends the raw path. h2 (under hyper/tonic) rejects any request whose `:authority` does not
//! parse as an `http::uri::Authority`, answering RST_STREAM(PROTOCOL_ERROR) before tonic ever
//! sees the request (hyperium/h2 PR #487 is still unmerged).
//!
//! How: the wrapper parses the client->server byte stream into frames, collects each header
//! block (HEADERS + CONTINUATION), walks the HPACK representations and, for a literal
//! `:authority` (static name index 1, or a literal name) whose value is not a valid authority,
//! substitutes the offending octets IN PLACE with octets of the same Huffman code length
//! (e.g. `%` and `/` -> `-`, all 6-bit codes). No length changes anywhere: frame lengths,
//! string lengths and HPACK dynamic-table entry sizes are identical, so h2's decoder stays in
//! sync with the client's encoder (later indexed references resolve to the rewritten value).
//! Anything it cannot parse is forwarded untouched (h2 then applies its own rules).
//! Safe Rust only (credmint forbids unsafe). It sees only what local processes send to the
//! agent's socket, and it never grows, shrinks or reorders bytes, so the worst a malformed
//! stream can do is reach h2 unchanged (proptests below: any bytes, no panic, no length
//! change). Without it, py-spiffe's first call fails with RST_STREAM (tests/agent).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::huffman::{ENCODE_CODES, ENCODE_CODE_LENGTHS};

const PREFACE_LEN: usize = 24;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// Longest `:authority` value decoded (a socket path is far shorter; h2 refuses what
/// is left as it is).
const MAX_AUTHORITY: usize = 4096;
/// Largest header block we buffer; beyond it we stop rewriting (h2's own limit is lower).
const MAX_HEADER_BLOCK: usize = 256 * 1024;

#[derive(Debug)]
enum Mode {
    Preface,
    Frames,
    /// forward `n` more payload bytes of a non-header frame without buffering
    Payload(usize),
    /// gave up parsing: forward everything verbatim
    Raw,
}

pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    /// bytes read from `inner`, not yet classified
    inbuf: Vec<u8>,
    /// bytes ready for the reader (h2)
    out: Vec<u8>,
    out_pos: usize,
    /// frames of an unfinished header block, and the fragment ranges inside them
    pending: Vec<u8>,
    segments: Vec<(usize, usize)>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            mode: Mode::Preface,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            pending: Vec::new(),
            segments: Vec::new(),
            eof: false,
        }
    }

    fn give_up(&mut self) {
        self.out.append(&mut self.pending);
        self.segments.clear();
        self.out.append(&mut self.inbuf);
        self.mode = Mode::Raw;
    }

    /// Move whatever can be classified from `inbuf` to `out`.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Raw => {
                    self.out.append(&mut self.inbuf);
                    return;
                }
                Mode::Preface => {
                    if self.inbuf.len() < PREFACE_LEN {
                        return;
                    }
                    self.out.extend(self.inbuf.drain(..PREFACE_LEN));
                    self.mode = Mode::Frames;
                }
                Mode::Payload(n) => {
                    let k = n.min(self.inbuf.len());
                    self.out.extend(self.inbuf.drain(..k));
                    self.mode = if k == n {
                        Mode::Frames
                    } else {
                        Mode::Payload(n - k)
                    };
                    if k < n {
                        return;
                    }
                }
                Mode::Frames => {
                    if self.inbuf.len() < 9 {
                        return;
                    }
                    let len = (usize::from(self.inbuf[0]) << 16)
                        | (usize::from(self.inbuf[1]) << 8)
                        | usize::from(self.inbuf[2]);
                    let (ty, flags) = (self.inbuf[3], self.inbuf[4]);
                    let in_block = !self.segments.is_empty() || !self.pending.is_empty();
                    let is_hdr = ty == FRAME_HEADERS || (ty == FRAME_CONTINUATION && in_block);
                    if !is_hdr {
                        if in_block {
                            return self.give_up(); // protocol error; let h2 report it
                        }
                        self.out.extend(self.inbuf.drain(..9));
                        self.mode = Mode::Payload(len);
                        continue;
                    }
                    if self.pending.len() + 9 + len > MAX_HEADER_BLOCK {
                        return self.give_up();
                    }
                    if self.inbuf.len() < 9 + len {
                        return;
                    }
                    let base = self.pending.len();
                    self.pending.extend(self.inbuf.drain(..9 + len));
                    let (mut start, mut end) = (base + 9, base + 9 + len);
                    if ty == FRAME_HEADERS {
                        if flags & FLAG_PADDED != 0 {
                            if start >= end {
                                return self.give_up();
                            }
                            let pad = usize::from(self.pending[start]);
                            start += 1;
                            if pad > end - start {
                                return self.give_up();
                            }
                            end -= pad;
                        }
                        if flags & FLAG_PRIORITY != 0 {
                            if end - start < 5 {
                                return self.give_up();
                            }
                            start += 5;
                        }
                    }
                    self.segments.push((start, end));
                    if flags & FLAG_END_HEADERS != 0 {
                        let mut block: Vec<u8> = self
                            .segments
                            .iter()
                            .flat_map(|&(s, e)| self.pending[s..e].iter().copied())
                            .collect();
                        if rewrite_header_block(&mut block) {
                            let mut off = 0;
                            for &(s, e) in &self.segments {
                                self.pending[s..e].copy_from_slice(&block[off..off + (e - s)]);
                                off += e - s;
                            }
                        }
                        self.segments.clear();
                        self.out.append(&mut self.pending);
                    }
                }
            }
        }
    }
}

/// The bytes h2 would read from a client that sent `input`, arriving `chunk` bytes at a
/// time, then closed: the socket wrapper's own state machine, run without a socket (the
/// fuzz target drives it with every chunking).
pub fn rewrite_stream(input: &[u8], chunk: usize) -> Vec<u8> {
    let mut fix = AuthorityFix::new(());
    for piece in input.chunks(chunk.max(1)) {
        fix.inbuf.extend_from_slice(piece);
        fix.process();
    }
    fix.eof = true;
    fix.give_up();
    fix.out
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut tmp = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut tmp);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let got = rb.filled();
                    if got.is_empty() {
                        // EOF: hand over any partial data as-is
                        this.eof = true;
                        this.give_up();
                    } else {
                        this.inbuf.extend_from_slice(got);
                        this.process();
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Keep tonic's per-connection info (UdsConnectInfo with SO_PEERCRED) for the wrapped stream.
impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<S>
{
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

// ---------------------------------------------------------------------------------------------
// HPACK walking (RFC 7541 §6)

fn hpack_int(b: &[u8], i: &mut usize, prefix: u8) -> Option<usize> {
    let mask = (1u16 << prefix) as u8 - 1;
    let mut v = usize::from(*b.get(*i)? & mask);
    *i += 1;
    if v < usize::from(mask) {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let byte = *b.get(*i)?;
        *i += 1;
        v = v.checked_add(usize::from(byte & 0x7f).checked_shl(shift)?)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Returns (huffman, start, end) of a string literal.
fn hpack_str(b: &[u8], i: &mut usize) -> Option<(bool, usize, usize)> {
    let huff = *b.get(*i)? & 0x80 != 0;
    let len = hpack_int(b, i, 7)?;
    let start = *i;
    let end = start.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    *i = end;
    Some((huff, start, end))
}

/// Huffman-decode, returning each symbol with its bit offset.
fn huff_decode(src: &[u8]) -> Option<Vec<(u8, usize)>> {
    let total = src.len() * 8;
    let (mut out, mut pos) = (Vec::new(), 0usize);
    'outer: while pos < total {
        let (mut code, mut len) = (0u32, 0u8);
        while len < 30 && pos + usize::from(len) < total {
            let bitpos = pos + usize::from(len);
            let bit = (src[bitpos / 8] >> (7 - bitpos % 8)) & 1;
            code = (code << 1) | u32::from(bit);
            len += 1;
            if len >= 5 {
                if let Some(sym) = (0..256usize)
                    .find(|&s| ENCODE_CODE_LENGTHS[s] == len && ENCODE_CODES[s] == code)
                {
                    out.push((sym as u8, pos));
                    pos += usize::from(len);
                    continue 'outer;
                }
            }
        }
        // trailing bits: must be < 8 bits of EOS prefix (all ones)
        let rest = total - pos;
        return (rest < 8 && code == (1u32 << len) - 1 && usize::from(len) == rest).then_some(out);
    }
    Some(out)
}

fn valid_authority(v: &[u8]) -> bool {
    axum::http::uri::Authority::try_from(v).is_ok()
}

fn safe_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// A safe octet whose Huffman code has `len` bits.
fn same_len_replacement(len: u8) -> Option<u8> {
    b"-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        .iter()
        .copied()
        .find(|&c| ENCODE_CODE_LENGTHS[usize::from(c)] == len)
}

fn fix_authority_value(block: &mut [u8], huffman: bool) {
    if !huffman {
        if valid_authority(block) {
            return;
        }
        let fixed: Vec<u8> = block
            .iter()
            .map(|&c| if safe_char(c) { c } else { b'-' })
            .collect();
        if valid_authority(&fixed) {
            block.copy_from_slice(&fixed);
        }
        return;
    }
    let Some(syms) = huff_decode(block) else {
        return;
    };
    let decoded: Vec<u8> = syms.iter().map(|&(s, _)| s).collect();
    if valid_authority(&decoded) {
        return;
    }
    let mut new = block.to_vec();
    let mut fixed = decoded.clone();
    for (k, &(s, bitpos)) in syms.iter().enumerate() {
        if safe_char(s) {
            continue;
        }
        let len = ENCODE_CODE_LENGTHS[usize::from(s)];
        let Some(r) = same_len_replacement(len) else {
            return;
        };
        fixed[k] = r;
        let code = ENCODE_CODES[usize::from(r)];
        for j in 0..usize::from(len) {
            let bit = ((code >> (usize::from(len) - 1 - j)) & 1) as u8;
            let p = bitpos + j;
            let m = 0x80u8 >> (p % 8);
            new[p / 8] = if bit == 1 {
                new[p / 8] | m
            } else {
                new[p / 8] & !m
            };
        }
    }
    if valid_authority(&fixed) {
        block.copy_from_slice(&new);
    }
}

/// Rewrites invalid literal `:authority` values in place. Returns true if anything changed.
pub fn rewrite_header_block(block: &mut [u8]) -> bool {
    let before = block.to_vec();
    let mut i = 0;
    while i < block.len() {
        let b = block[i];
        let name_idx = if b & 0x80 != 0 {
            // indexed header field
            if hpack_int(block, &mut i, 7).is_none() {
                break;
            }
            continue;
        } else if b & 0x40 != 0 {
            hpack_int(block, &mut i, 6)
        } else if b & 0x20 != 0 {
            // dynamic table size update
            if hpack_int(block, &mut i, 5).is_none() {
                break;
            }
            continue;
        } else {
            hpack_int(block, &mut i, 4)
        };
        let Some(name_idx) = name_idx else { break };
        let is_authority = if name_idx == 0 {
            let Some((h, s, e)) = hpack_str(block, &mut i) else {
                break;
            };
            if e - s > b":authority".len() {
                // Too long to be ":authority" in either encoding: not worth decoding.
                false
            } else if h {
                huff_decode(&block[s..e])
                    .is_some_and(|v| v.iter().map(|&(c, _)| c).eq(b":authority".iter().copied()))
            } else {
                &block[s..e] == b":authority"
            }
        } else {
            name_idx == 1 // static table entry 1 is :authority
        };
        let Some((h, s, e)) = hpack_str(block, &mut i) else {
            break;
        };
        if is_authority && e - s <= MAX_AUTHORITY {
            fix_authority_value(&mut block[s..e], h);
        }
    }
    block[..] != before[..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic, and never a change of length (h2's HPACK state depends
        /// on every length staying what the client encoded).
        #[test]
        fn rewriting_never_panics_nor_changes_lengths(mut block in proptest::collection::vec(any::<u8>(), 0..512)) {
            let n = block.len();
            rewrite_header_block(&mut block);
            prop_assert_eq!(block.len(), n);
        }

        /// A valid authority, raw or Huffman-coded, is left exactly as it was.
        #[test]
        fn valid_authorities_are_untouched(host in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10}){0,3}(:[0-9]{1,5})?") {
            let enc = huff_encode(host.as_bytes());
            prop_assume!(enc.len() < 127 && host.len() < 127);
            let mut block = vec![0x41, 0x80 | enc.len() as u8];
            block.extend_from_slice(&enc);
            let before = block.clone();
            prop_assert!(!rewrite_header_block(&mut block));
            prop_assert_eq!(block, before);
        }
    }

    fn huff_encode(src: &[u8]) -> Vec<u8> {
        let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
        for &c in src {
            bits = (bits << ENCODE_CODE_LENGTHS[usize::from(c)])
                | u64::from(ENCODE_CODES[usize::from(c)]);
            n += u32::from(ENCODE_CODE_LENGTHS[usize::from(c)]);
            while n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        if n > 0 {
            out.push(((bits << (8 - n)) as u8) | ((1u8 << (8 - n)) - 1));
        }
        out
    }

    #[test]
    fn rewrites_huffman_and_raw_authority() {
        for value in [&b"tmp%2Fwlapi%2Fwl.sock"[..], b"/run/spire/api.sock"] {
            // literal with incremental indexing, static name index 1 (:authority), Huffman value
            let enc = huff_encode(value);
            let mut block = vec![0x41, 0x80 | enc.len() as u8];
            block.extend_from_slice(&enc);
            block.extend_from_slice(&[0x83, 0x86]); // :method POST, :scheme http
            assert!(rewrite_header_block(&mut block));
            let syms = huff_decode(&block[2..2 + enc.len()]).unwrap();
            let v: Vec<u8> = syms.iter().map(|s| s.0).collect();
            assert!(valid_authority(&v), "{}", String::from_utf8_lossy(&v));
            assert_eq!(v.len(), value.len());
            // raw value
            let mut block = vec![0x01, value.len() as u8];
            block.extend_from_slice(value);
            assert!(rewrite_header_block(&mut block));
            assert!(valid_authority(&block[2..]));
        }
        let mut ok = vec![0x41, 9];
        ok.extend_from_slice(b"localhost");
        assert!(!rewrite_header_block(&mut ok));
    }
}
