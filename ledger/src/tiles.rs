//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): which tiles a tree of a given size has,
//! their paths and their bytes (FORMAT.md §15).
//!
//! Pure computation only, like [`crate::merkle`]: tile hashes come from the same
//! perfect-subtree lookup `get(level, index)` the store answers from its node table, so the
//! tiles are, by construction, the tree the checkpoints sign. A hash at tile level `L`,
//! position `i` is the Merkle node at tree level `8·L`, index `i`. No file or network I/O
//! here: the appliance writes the files, a client fetches them.

use crate::merkle;
use crate::Hash;

/// Tile height: each tile is a subtree of height 8.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile (`2^TILE_HEIGHT`).
pub const TILE_WIDTH: u64 = 256;
/// Largest entry an entry bundle can frame (its length prefix is a big-endian `u16`).
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Errors of tile encoding and decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A record is longer than a `u16` length prefix can say: tlog-tiles cannot carry it
    /// (FORMAT.md §15.3), so no bundle holding it is produced.
    #[error("record {index} is {len} bytes; tlog-tiles entry bundles frame at most 65535")]
    EntryTooLarge {
        /// Ledger index of the record.
        index: u64,
        /// Its length in bytes.
        len: usize,
    },
    /// An entry bundle ends inside a length prefix or an entry.
    #[error("entry bundle truncated at byte {offset}")]
    TruncatedBundle {
        /// Offset where the bundle ran out.
        offset: usize,
    },
    /// A hash tile's length is not a whole number of hashes, or not the width expected.
    #[error("hash tile has {len} bytes, expected {expected}")]
    TileLength {
        /// Bytes found.
        len: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// One tile of the tree: `width` hashes (1..=256; 256 = full) at tile level `level`,
/// tile index `index`. The entry bundle of a level-0 tile has the same index and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Tile level (tree level `8·level`).
    pub level: u8,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes, 1 to 256.
    pub width: u16,
}

impl Tile {
    /// Whether this is a full (immutable, 256-hash) tile.
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// `tile/<L>/<N>[.p/<W>]`, relative to the log prefix.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, self.suffix())
    }

    /// `tile/entries/<N>[.p/<W>]`: the entry bundle of this level-0 tile.
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}", self.suffix())
    }

    fn suffix(&self) -> String {
        let n = encode_index(self.index);
        if self.is_full() {
            n
        } else {
            format!("{n}.p/{}", self.width)
        }
    }

    /// Index of the first tree node (at tree level `8·level`) this tile holds.
    pub fn first_node(&self) -> u64 {
        self.index * TILE_WIDTH
    }
}

/// `<N>` as zero-padded 3-digit path elements, all but the last prefixed with `x`
/// (1234067 -> `x001/x234/067`), so a filesystem can hold every tile without a file and a
/// directory sharing a name.
pub fn encode_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Number of hashes at tile level `level` in a tree of `size` entries:
/// `floor(size / 256^level)`.
fn hashes_at(size: u64, level: u8) -> u64 {
    let shift = u32::from(level) * TILE_HEIGHT;
    size.checked_shr(shift).unwrap_or(0)
}

/// Every tile (full and partial) a tree of `size` entries is served as, level by level.
pub fn tiles_for_size(size: u64) -> Vec<Tile> {
    new_tiles(0, size)
}

/// The tiles a tree growing from `old` to `new` entries adds: the full tiles completed in
/// between and, per level, the partial tile of size `new` if it differs from size `old`'s.
/// Empty if `new <= old`. Tiles of size `old` stay valid (full tiles never change; a partial
/// tile of width `W` always has the same bytes), so nothing returned here replaces a file.
pub fn new_tiles(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    if new <= old {
        return out;
    }
    let mut level = 0u8;
    loop {
        let n_new = hashes_at(new, level);
        if n_new == 0 {
            break;
        }
        let n_old = hashes_at(old, level);
        let full_new = n_new / TILE_WIDTH;
        for index in n_old / TILE_WIDTH..full_new {
            out.push(Tile {
                level,
                index,
                width: 256,
            });
        }
        let width = n_new % TILE_WIDTH;
        if width > 0 && n_new != n_old {
            out.push(Tile {
                level,
                index: full_new,
                // width < 256, so it fits.
                width: u16::try_from(width).unwrap_or(u16::MAX),
            });
        }
        level += 1;
    }
    out
}

/// Whether `tile` is a partial tile whose full tile exists in a tree of `size` entries
/// (the spec lets a log delete such a partial tile, hence never write it).
pub fn superseded(tile: &Tile, size: u64) -> bool {
    !tile.is_full() && hashes_at(size, tile.level) / TILE_WIDTH > tile.index
}

/// The bytes of a hash tile: its `width` hashes, concatenated. Hash `i` of tile `(L, N)` is
/// the tree node `get(8·L, N·256 + i)`.
pub fn tile_bytes<E, F>(tile: &Tile, get: &mut F) -> Result<Vec<u8>, E>
where
    F: FnMut(u8, u64) -> Result<Hash, E>,
{
    // level <= 7 for any u64 size, so 8·level fits a u8.
    let tree_level = tile.level.saturating_mul(8);
    let mut out = Vec::with_capacity(usize::from(tile.width) * 32);
    for i in 0..u64::from(tile.width) {
        out.extend_from_slice(&get(tree_level, tile.first_node() + i)?);
    }
    Ok(out)
}

/// Splits a hash tile into hashes, requiring exactly `width` of them.
pub fn parse_tile(bytes: &[u8], width: u16) -> Result<Vec<Hash>, TileError> {
    let expected = usize::from(width) * 32;
    if bytes.len() != expected {
        return Err(TileError::TileLength {
            len: bytes.len(),
            expected,
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Appends one entry (record `index`) to an entry bundle: big-endian `u16` length, bytes.
pub fn push_entry(bundle: &mut Vec<u8>, index: u64, entry: &[u8]) -> Result<(), TileError> {
    let len = u16::try_from(entry.len()).map_err(|_| TileError::EntryTooLarge {
        index,
        len: entry.len(),
    })?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits an entry bundle into its entries.
pub fn parse_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, TileError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut offset = 0usize;
    while !rest.is_empty() {
        let (Some(&hi), Some(&lo)) = (rest.first(), rest.get(1)) else {
            return Err(TileError::TruncatedBundle { offset });
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(entry) = rest.get(2..2 + len) else {
            return Err(TileError::TruncatedBundle { offset });
        };
        out.push(entry);
        rest = rest.get(2 + len..).unwrap_or(&[]);
        offset += 2 + len;
    }
    Ok(out)
}

/// Root of the tree of `size` entries computed from its tiles alone, each fetched through
/// `fetch` with the width the size requires (a client's view). Tree node `(l, i)` is read
/// from tile level `l / 8`, hashing `2^(l mod 8)` of its hashes where `l` is not a multiple
/// of 8, as the spec's "levels between are reconstructed by hashing the leaves".
pub fn root_from_tiles<E, F>(size: u64, fetch: &mut F) -> Result<Hash, E>
where
    F: FnMut(&Tile) -> Result<Vec<Hash>, E>,
{
    let mut get = |level: u8, index: u64| -> Result<Hash, E> {
        let tile_level = level / 8;
        let r = u32::from(level % 8);
        let first = index << r;
        let count = 1u64 << r;
        let tile_index = first / TILE_WIDTH;
        let available = hashes_at(size, tile_level);
        let width = (available - tile_index * TILE_WIDTH).min(TILE_WIDTH);
        let tile = Tile {
            level: tile_level,
            index: tile_index,
            width: u16::try_from(width).unwrap_or(256),
        };
        let hashes = fetch(&tile)?;
        let start = usize::try_from(first % TILE_WIDTH).unwrap_or(0);
        let end = start + usize::try_from(count).unwrap_or(0);
        Ok(merkle::root_from_leaf_hashes(
            hashes.get(start..end).unwrap_or(&[]),
        ))
    };
    merkle::root_at(size, &mut get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    /// Every tile of `size`, keyed by (level, index, width), computed from the leaves.
    fn tiles_of(leaves: &[Hash], size: u64) -> std::collections::HashMap<Tile, Vec<u8>> {
        let mut get = merkle::slice_lookup(leaves);
        tiles_for_size(size)
            .into_iter()
            .map(|t| {
                let bytes = tile_bytes(&t, &mut get).unwrap();
                (t, bytes)
            })
            .collect()
    }

    #[test]
    fn index_paths_follow_the_spec_example() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(999), "999");
        assert_eq!(encode_index(1000), "x001/000");
        let p = Tile {
            level: 0,
            index: 1234067,
            width: 112,
        };
        assert_eq!(p.path(), "tile/0/x001/x234/067.p/112");
        assert_eq!(p.entries_path(), "tile/entries/x001/x234/067.p/112");
        let f = Tile {
            level: 3,
            index: 5,
            width: 256,
        };
        assert_eq!(f.path(), "tile/3/005");
    }

    #[test]
    fn tree_of_70000_has_the_tiles_the_spec_lists() {
        let tiles = tiles_for_size(70_000);
        let at = |level: u8| tiles.iter().filter(move |t| t.level == level);
        assert_eq!(at(0).filter(|t| t.is_full()).count(), 273);
        assert_eq!(
            at(0).find(|t| !t.is_full()).map(|t| (t.index, t.width)),
            Some((273, 112))
        );
        assert_eq!(at(1).filter(|t| t.is_full()).count(), 1);
        assert_eq!(at(1).find(|t| !t.is_full()).map(|t| t.width), Some(17));
        assert_eq!(at(2).map(|t| t.width).collect::<Vec<_>>(), vec![1]);
        assert_eq!(at(3).count(), 0);
        // A tree of 256: one full level-0 tile and a level-1 tile of width 1.
        let t = tiles_for_size(256);
        assert_eq!(
            t,
            vec![
                Tile {
                    level: 0,
                    index: 0,
                    width: 256
                },
                Tile {
                    level: 1,
                    index: 0,
                    width: 1
                }
            ]
        );
        assert!(tiles_for_size(0).is_empty());
    }

    #[test]
    fn bundles_frame_entries_and_refuse_what_u16_cannot_say() {
        let mut b = Vec::new();
        push_entry(&mut b, 0, b"ab").unwrap();
        push_entry(&mut b, 1, b"").unwrap();
        push_entry(&mut b, 2, &[7u8; 65535]).unwrap();
        assert_eq!(&b[..6], &[0, 2, b'a', b'b', 0, 0]);
        let parsed = parse_bundle(&b).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2].len(), 65535);
        assert_eq!(
            push_entry(&mut b, 9, &[0u8; 65536]),
            Err(TileError::EntryTooLarge {
                index: 9,
                len: 65536
            })
        );
        assert_eq!(
            parse_bundle(&[0, 3, 1, 2]),
            Err(TileError::TruncatedBundle { offset: 0 })
        );
        assert_eq!(
            parse_bundle(&[0, 0, 1]),
            Err(TileError::TruncatedBundle { offset: 2 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Tiles alone give the root merkle.rs computes, for any size up to a few
        /// level-1 tiles (and the level-0 tiles hold exactly the leaf hashes).
        #[test]
        fn tiles_reconstruct_the_merkle_root(size in 0u64..1400) {
            let leaves = leaves(size);
            let tiles = tiles_of(&leaves, size);
            let mut fetch = |t: &Tile| -> Result<Vec<Hash>, TileError> {
                let bytes = tiles.get(t).ok_or(TileError::TileLength { len: 0, expected: 1 })?;
                parse_tile(bytes, t.width)
            };
            let root = root_from_tiles(size, &mut fetch).unwrap();
            prop_assert_eq!(root, merkle::root_from_leaf_hashes(&leaves));
            let level0: Vec<Hash> = tiles_for_size(size)
                .iter()
                .filter(|t| t.level == 0)
                .flat_map(|t| parse_tile(&tiles[t], t.width).unwrap())
                .collect();
            prop_assert_eq!(level0, leaves);
        }

        /// Growing a tree checkpoint by checkpoint produces every tile of the final size,
        /// each tile once; anything else produced is an older, narrower partial tile (still
        /// valid for the size that needed it) or one a full tile superseded.
        #[test]
        fn growth_adds_each_tile_once(mut sizes in proptest::collection::vec(0u64..140_000, 1..8)) {
            sizes.sort_unstable();
            let mut seen = std::collections::BTreeSet::new();
            let mut prev = 0;
            for &s in &sizes {
                for t in new_tiles(prev, s) {
                    prop_assert!(seen.insert(t), "tile {:?} produced twice", t);
                }
                prev = s;
            }
            let last = *sizes.last().unwrap();
            let expected: std::collections::BTreeSet<Tile> =
                tiles_for_size(last).into_iter().collect();
            prop_assert!(expected.is_subset(&seen));
            for t in seen.difference(&expected) {
                let narrower = expected
                    .iter()
                    .any(|e| e.level == t.level && e.index == t.index && e.width > t.width);
                prop_assert!(!t.is_full() && (superseded(t, last) || narrower), "{:?}", t);
            }
        }

        /// Higher-level tile hashes are the roots of the full tiles below them.
        #[test]
        fn level_one_hashes_are_roots_of_level_zero_tiles(size in 256u64..1400) {
            let leaves = leaves(size);
            let tiles = tiles_of(&leaves, size);
            let l1 = tiles_for_size(size).into_iter().find(|t| t.level == 1).unwrap();
            let hashes = parse_tile(&tiles[&l1], l1.width).unwrap();
            for (i, h) in hashes.iter().enumerate() {
                let t0 = Tile { level: 0, index: i as u64, width: 256 };
                let below = parse_tile(&tiles[&t0], 256).unwrap();
                prop_assert_eq!(*h, merkle::root_from_leaf_hashes(&below));
            }
        }

        #[test]
        fn index_encoding_round_trips(n in any::<u64>()) {
            let s = encode_index(n);
            let parts: Vec<&str> = s.split('/').collect();
            for (i, p) in parts.iter().enumerate() {
                let digits = if i + 1 < parts.len() {
                    prop_assert!(p.starts_with('x'));
                    &p[1..]
                } else {
                    p
                };
                prop_assert_eq!(digits.len(), 3);
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            }
            let back = parts.iter().fold(0u128, |acc, p| {
                acc * 1000 + p.trim_start_matches('x').parse::<u128>().unwrap()
            });
            prop_assert_eq!(back, u128::from(n));
        }
    }
}
