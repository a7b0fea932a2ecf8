//! A tlog-tiles client written from the spec (c2sp.org/tlog-tiles) for this test only: its
//! own path encoding, entry-bundle parsing and RFC 6962 hashing, so it checks credmint's
//! tiles module rather than repeating it. Only the signed-note check uses the ledger crate
//! (the part FORMAT.md §7 already pins against public vectors).

use sha2::{Digest, Sha256};

type Hash = [u8; 32];

pub struct TilesClient {
    base: String,
    pub origin: String,
    key: [u8; 32],
    http: reqwest::Client,
}

/// `N` as 3-digit groups, all but the last prefixed with `x` (spec: "x001/x234/067").
fn encode(n: u64) -> String {
    let s = format!("{n}");
    let padded = format!("{}{s}", "0".repeat((3 - s.len() % 3) % 3));
    let groups: Vec<&str> = (0..padded.len() / 3)
        .map(|i| &padded[3 * i..3 * i + 3])
        .collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                g.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn tile_path(kind: &str, n: u64, width: u64) -> String {
    if width == 256 {
        format!("tile/{kind}/{}", encode(n))
    } else {
        format!("tile/{kind}/{}.p/{width}", encode(n))
    }
}

fn leaf(entry: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(entry)
        .finalize()
        .into()
}

/// RFC 6962 §2.1 MTH over hashes taken as the tree's leaves (already leaf-hashed).
fn mth(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => Sha256::digest([]).into(),
        1 => hashes[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            let (l, r) = (mth(&hashes[..k]), mth(&hashes[k..]));
            Sha256::new()
                .chain_update([1u8])
                .chain_update(l)
                .chain_update(r)
                .finalize()
                .into()
        }
    }
}

fn hashes(bytes: &[u8], width: u64) -> Vec<Hash> {
    assert_eq!(bytes.len() as u64, 32 * width, "tile of width {width}");
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

impl TilesClient {
    pub fn new(base: String, origin: String, key: [u8; 32]) -> TilesClient {
        TilesClient {
            base,
            origin,
            key,
            http: reqwest::Client::new(),
        }
    }

    /// GET `path`: `Some(body)` on 200 (checking the content type the spec names), `None`
    /// on 404.
    async fn get(&self, path: &str) -> Option<Vec<u8>> {
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .unwrap();
        if r.status() == 404 {
            return None;
        }
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let want = if path == "checkpoint" {
            "text/plain; charset=utf-8"
        } else {
            "application/octet-stream"
        };
        assert_eq!(ct, want, "{path}");
        Some(r.bytes().await.unwrap().to_vec())
    }

    async fn must(&self, path: &str) -> Vec<u8> {
        self.get(path)
            .await
            .unwrap_or_else(|| panic!("{path}: 404"))
    }

    /// The checkpoint, its signature verified with the pinned ledger key.
    pub async fn checkpoint(&self) -> credmint_ledger::Checkpoint {
        let note = String::from_utf8(self.must("checkpoint").await).unwrap();
        credmint_ledger::checkpoint::open(&note, &self.origin, &self.key).unwrap()
    }

    /// Widths of the level-0 tiles of a tree of `size`: `(index, width)`.
    fn level0(size: u64) -> impl Iterator<Item = (u64, u64)> {
        (0..size.div_ceil(256)).map(move |n| (n, (size - 256 * n).min(256)))
    }

    /// Every entry of the tree of `size`, from the entry bundles; each entry's leaf hash
    /// must be the level-0 tile's hash at its position.
    pub async fn entries(&self, size: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (n, width) in Self::level0(size) {
            let tile = hashes(&self.must(&tile_path("0", n, width)).await, width);
            let bundle = self.must(&tile_path("entries", n, width)).await;
            let mut rest = &bundle[..];
            let mut i = 0;
            while !rest.is_empty() {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let entry = &rest[2..2 + len];
                assert_eq!(
                    leaf(entry),
                    tile[i],
                    "entry {} does not hash to its tile",
                    256 * n + i as u64
                );
                out.push(entry.to_vec());
                rest = &rest[2 + len..];
                i += 1;
            }
            assert_eq!(
                i as u64, width,
                "bundle {n} has {i} entries, tile width {width}"
            );
        }
        out
    }

    /// Root of the tree of `size` from its level-0 tiles.
    pub async fn root_from_level0(&self, size: u64) -> Hash {
        let mut all = Vec::new();
        for (n, width) in Self::level0(size) {
            all.extend(hashes(&self.must(&tile_path("0", n, width)).await, width));
        }
        mth(&all)
    }

    /// Root at an earlier checkpoint's `size`: its partial tile, or (the spec's fallback
    /// once the log replaced it) the full tile cut to width. Returns how many partial
    /// tiles were served.
    pub async fn root_at(&self, size: u64) -> (Hash, usize) {
        let mut all = Vec::new();
        let mut partial = 0;
        for (n, width) in Self::level0(size) {
            let bytes = match self.get(&tile_path("0", n, width)).await {
                Some(b) => {
                    partial += usize::from(width < 256);
                    b
                }
                None => self.must(&tile_path("0", n, 256)).await[..32 * width as usize].to_vec(),
            };
            all.extend(hashes(&bytes, width));
        }
        (mth(&all), partial)
    }

    /// Level-1 hashes are the MTH of each full level-0 tile (the spec's definition).
    pub async fn check_level1(&self, size: u64) {
        let width = size / 256;
        assert!(
            (1..256).contains(&width),
            "test expects one partial level-1 tile"
        );
        let l1 = hashes(&self.must(&tile_path("1", 0, width)).await, width);
        for (n, h) in l1.iter().enumerate() {
            let t = hashes(&self.must(&tile_path("0", n as u64, 256)).await, 256);
            assert_eq!(mth(&t), *h, "level-1 hash {n}");
        }
        assert_eq!(encode(1_234_067), "x001/x234/067");
        assert_eq!(encode(5), "005");
    }
}
