//! RFC 9162 Merkle tree: hashing, proof generation and proof verification.
//!
//! Pure functions only, so the store, the status path and the auditor run
//! identical code. Proof generation reads perfect-subtree hashes through a
//! lookup closure `get(level, index)` — the hash of leaves
//! `[index << level, (index + 1) << level)` — which the store answers from its
//! node table in O(1) each, giving O(log n) lookups per proof. Verification
//! follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, so proofs that are too
//! short or too long are rejected rather than folded.

use sha2::{Digest, Sha256};

use crate::error::ProofError;
use crate::Hash;

/// Root of the empty tree: SHA-256 of the empty string (not of an empty leaf).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Split point for `n >= 2` leaves: the largest power of two strictly less
/// than `n` (RFC 9162 §2.1.1). Returns 0 for `n < 2`.
pub fn split_point(n: u64) -> u64 {
    if n < 2 {
        return 0;
    }
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of the subtree of `size` leaves starting at `start`, where the
/// subtree is one that occurs in the RFC 9162 tree (start aligned to the
/// largest power of two not above `size`). Perfect subtrees are one lookup;
/// others recurse along their right spine, O(log size) lookups.
pub fn subtree_hash<E, F>(start: u64, size: u64, get: &mut F) -> Result<Hash, E>
where
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    if size.is_power_of_two() {
        let level = size.trailing_zeros();
        // level < 64, so the cast cannot truncate.
        return get(level as u8, start >> level);
    }
    let k = split_point(size);
    let left = subtree_hash(start, k, get)?;
    let right = subtree_hash(start + k, size - k, get)?;
    Ok(node_hash(&left, &right))
}

/// Root of the tree of the first `size` leaves.
pub fn root_at<E, F>(size: u64, get: &mut F) -> Result<Hash, E>
where
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    subtree_hash(0, size, get)
}

/// Root of a tree given all its leaf hashes (in memory).
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l, |_, _, _| {});
    }
    f.root()
}

/// Lookup closure over an in-memory slice of leaf hashes, for tests and tools
/// that hold a small tree: computes perfect-subtree hashes on demand.
pub fn slice_lookup(leaves: &[Hash]) -> impl FnMut(u8, u64) -> Result<Hash, ProofError> + '_ {
    move |level, index| {
        let width = 1u64.checked_shl(level.into()).unwrap_or(0);
        let start = index.saturating_mul(width);
        let end = start.saturating_add(width);
        let usable = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        if width == 0 || end > usable {
            return Err(ProofError::InvalidSizes {
                first: start,
                second: end,
                reason: "subtree beyond the leaves held",
            });
        }
        // start < end <= len, so these conversions fit.
        let s = usize::try_from(start).unwrap_or(usize::MAX);
        let e = usize::try_from(end).unwrap_or(usize::MAX);
        Ok(root_from_leaf_hashes(leaves.get(s..e).unwrap_or(&[])))
    }
}

/// Inclusion proof (RFC 9162 §2.1.3.1 PATH) for leaf `index` in the tree of
/// `size` leaves, ordered from the leaf's sibling up to the root's child.
pub fn inclusion_proof<E, F>(index: u64, size: u64, get: &mut F) -> Result<Vec<Hash>, E>
where
    E: From<ProofError>,
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    let mut out = Vec::new();
    path(index, 0, size, get, &mut out)?;
    Ok(out)
}

fn path<E, F>(m: u64, start: u64, n: u64, get: &mut F, out: &mut Vec<Hash>) -> Result<(), E>
where
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(m, start, k, get, out)?;
        out.push(subtree_hash(start + k, n - k, get)?);
    } else {
        path(m - k, start + k, n - k, get, out)?;
        out.push(subtree_hash(start, k, get)?);
    }
    Ok(())
}

/// Consistency proof (RFC 9162 §2.1.4.1 PROOF) between the trees of
/// `old_size` and `new_size` leaves. Empty when the sizes are equal or the
/// old tree is empty.
pub fn consistency_proof<E, F>(old_size: u64, new_size: u64, get: &mut F) -> Result<Vec<Hash>, E>
where
    E: From<ProofError>,
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    if old_size > new_size {
        return Err(ProofError::InvalidSizes {
            first: old_size,
            second: new_size,
            reason: "old size is larger than new size",
        }
        .into());
    }
    let mut out = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(out);
    }
    subproof(old_size, 0, new_size, true, get, &mut out)?;
    Ok(out)
}

fn subproof<E, F>(
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    get: &mut F,
    out: &mut Vec<Hash>,
) -> Result<(), E>
where
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    if m == n {
        if !whole {
            out.push(subtree_hash(start, m, get)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, start, k, whole, get, out)?;
        out.push(subtree_hash(start + k, n - k, get)?);
    } else {
        subproof(m - k, start + k, n - k, false, get, out)?;
        out.push(subtree_hash(start, k, get)?);
    }
    Ok(())
}

/// Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2, steps 1-4),
/// rejecting proofs with too few or too many hashes.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for (i, p) in proof.iter().enumerate() {
        if sn == 0 {
            return Err(ProofError::TooLong {
                extra: proof.len() - i,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    Ok(r)
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let found = root_from_inclusion_proof(index, size, leaf, proof)?;
    if &found != root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            found,
        });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with `old_root` is a prefix of
/// the tree of `new_size` leaves with `new_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots; an empty old tree is
/// consistent with everything and needs an empty proof (as transparency-dev
/// does, so its test vectors pass unchanged).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::InvalidSizes {
            first: old_size,
            second: new_size,
            reason: "old size is larger than new size",
        });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::NotEmpty { len: proof.len() });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch {
                expected: *new_root,
                found: *old_root,
            });
        }
        return Ok(());
    }
    // Step 1: an empty path cannot prove anything for 0 < old < new.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::TooShort);
    };
    // Step 2: a power-of-two old tree is itself the first node of the path.
    let (seed, rest): (&Hash, &[Hash]) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // Steps 3-4.
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Steps 5-6.
    let (mut fr, mut sr) = (*seed, *seed);
    for (i, c) in rest.iter().enumerate() {
        if sn == 0 {
            return Err(ProofError::TooLong {
                extra: rest.len() - i,
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(ProofError::TooShort);
    }
    if &fr != old_root {
        return Err(ProofError::RootMismatch {
            expected: *old_root,
            found: fr,
        });
    }
    if &sr != new_root {
        return Err(ProofError::RootMismatch {
            expected: *new_root,
            found: sr,
        });
    }
    Ok(())
}

/// The compact range `[0, size)`: the roots of the perfect subtrees that make
/// up the tree, largest first (one per set bit of `size`). O(log n) memory;
/// appending a leaf is the pure "old size + new leaf -> new root" step the
/// writer and the verifier share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from stored subtree roots; `hashes` must hold one
    /// hash per set bit of `size`, largest subtree first (see [`Frontier::positions`]).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// `(level, index)` of each perfect subtree in the compact range of `size`
    /// leaves, largest first.
    pub fn positions(size: u64) -> Vec<(u8, u64)> {
        let mut out = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if (size >> level) & 1 == 1 {
                out.push((level, start >> level));
                start += 1u64 << level;
            }
        }
        out
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree roots, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf hash. `emit(level, index, hash)` is called for the leaf
    /// (level 0) and for every perfect subtree the leaf completes, so a store
    /// can persist each node exactly once.
    pub fn push(&mut self, leaf: Hash, mut emit: impl FnMut(u8, u64, &Hash)) {
        let index = self.size;
        emit(0, index, &leaf);
        let mut h = leaf;
        let mut level = 0u8;
        while (self.size >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            h = node_hash(&left, &h);
            level += 1;
            emit(level, index >> level, &h);
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// Root of the tree (EMPTY_ROOT when empty).
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return EMPTY_ROOT;
        };
        it.fold(*last, |acc, h| node_hash(h, &acc))
    }
}
