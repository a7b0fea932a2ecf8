//! A compact hash map for the semantic checker's per-credential state: 12-byte
//! keys (truncated, per-run salted SHA-256 of the credential id) and a `u32`
//! value in 16-byte slots, open addressing with linear probing, at most 7/8
//! full, split into 256 shards so growing never copies more than 1/256 of the
//! table at once. About 18-36 (typically ~24) bytes per entry, versus ~50 for
//! a `HashMap<[u8; 16], u32>`.

use std::hash::{BuildHasher, Hasher};

use sha2::{Digest, Sha256};

/// A credential key: never all zeros (zero marks an empty slot).
pub(crate) type Key = [u8; 12];

const SHARDS: usize = 256;

/// Derives keys with a salt drawn per process, so nobody can prepare two ids
/// whose keys collide (96 bits: ~1e-15 chance of any accidental collision
/// among 10 million ids, and a collision could only hide a violation).
#[derive(Debug, Clone)]
pub(crate) struct Keyer {
    salt: [u8; 16],
}

impl Keyer {
    pub(crate) fn new() -> Self {
        let mut salt = [0u8; 16];
        for (i, chunk) in salt.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        Keyer { salt }
    }

    pub(crate) fn key(&self, domain: &[u8], id: &[u8]) -> Key {
        let d = Sha256::new()
            .chain_update(self.salt)
            .chain_update(domain)
            .chain_update((id.len() as u32).to_be_bytes())
            .chain_update(id)
            .finalize();
        let mut k = [0u8; 12];
        k.copy_from_slice(&d[..12]);
        if k == [0u8; 12] {
            k[11] = 1;
        }
        k
    }
}

#[derive(Debug, Default)]
struct Shard {
    slots: Vec<[u8; 16]>,
    len: usize,
}

impl Shard {
    fn find(&self, k: &Key) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut h = [0u8; 8];
        h.copy_from_slice(&k[1..9]);
        let mut i = (u64::from_le_bytes(h) as usize) & mask;
        loop {
            let slot = &self.slots[i];
            if slot[..12] == [0u8; 12] {
                return Err(i);
            }
            if slot[..12] == k[..] {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let new_cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![[0u8; 16]; new_cap]);
        for slot in old.into_iter().filter(|s| s[..12] != [0u8; 12]) {
            let mut k = [0u8; 12];
            k.copy_from_slice(&slot[..12]);
            if let Err(i) = self.find(&k) {
                self.slots[i] = slot;
            }
        }
    }
}

/// Map from [`Key`] to `u32`.
#[derive(Debug)]
pub(crate) struct CompactMap {
    shards: Vec<Shard>,
    len: u64,
}

impl CompactMap {
    pub(crate) fn new() -> Self {
        CompactMap {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Inserts `k -> v`; false (and no change) if `k` is present.
    pub(crate) fn insert(&mut self, k: Key, v: u32) -> bool {
        let shard = &mut self.shards[usize::from(k[0])];
        if (shard.len + 1) * 8 > shard.slots.len() * 7 {
            shard.grow();
        }
        match shard.find(&k) {
            Ok(_) => false,
            Err(i) => {
                shard.slots[i][..12].copy_from_slice(&k);
                shard.slots[i][12..].copy_from_slice(&v.to_le_bytes());
                shard.len += 1;
                self.len += 1;
                true
            }
        }
    }

    pub(crate) fn get(&self, k: &Key) -> Option<u32> {
        let shard = &self.shards[usize::from(k[0])];
        if shard.slots.is_empty() {
            return None;
        }
        let i = shard.find(k).ok()?;
        let mut v = [0u8; 4];
        v.copy_from_slice(&shard.slots[i][12..]);
        Some(u32::from_le_bytes(v))
    }

    /// Replaces the value of a present key; no-op if absent.
    pub(crate) fn set(&mut self, k: &Key, v: u32) {
        let shard = &mut self.shards[usize::from(k[0])];
        if shard.slots.is_empty() {
            return;
        }
        if let Ok(i) = shard.find(k) {
            shard.slots[i][12..].copy_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_hash_map() {
        let keyer = Keyer::new();
        let mut m = CompactMap::new();
        let mut reference = std::collections::HashMap::new();
        for i in 0..20_000u32 {
            let k = keyer.key(b"t", &(i % 15_000).to_be_bytes());
            let fresh = m.insert(k, i);
            assert_eq!(fresh, !reference.contains_key(&k));
            if fresh {
                reference.insert(k, i);
            }
        }
        assert_eq!(m.len(), 15_000);
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(*v));
            m.set(k, v ^ 1);
            assert_eq!(m.get(k), Some(v ^ 1));
        }
        assert_eq!(m.get(&keyer.key(b"t", b"absent")), None);
        assert_eq!(m.get(&keyer.key(b"u", &0u32.to_be_bytes())), None);
    }
}
