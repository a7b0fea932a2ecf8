//! C2SP tlog-tiles publication, checked from outside: the real Debian nginx serves the
//! tiles directory, and a tiles client written here from the spec (c2sp.org/tlog-tiles,
//! not from credmint's `tiles` module) rebuilds the ledger from tiles alone.

mod client;
#[path = "../common/mod.rs"]
mod common;
mod nginx;
mod retry;
#[path = "../issuance/support.rs"]
#[allow(dead_code)]
mod support;
mod tamper;
mod witness;

use std::time::Duration;

use credmint_ledger::export::{BundleItem, BundleReader};

use crate::client::TilesClient;
use crate::common::{genesis_key_of, text, TestAppliance};
use crate::support::registered_workload;

/// Records and checkpoints of `credmint ledger export --offline` (the appliance stopped).
fn exported(app: &TestAppliance) -> (Vec<Vec<u8>>, Vec<String>) {
    let out = app.dir.path().join("ledger.bundle");
    let run = app.cli(&[
        "ledger",
        "export",
        "--offline",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let mut reader = BundleReader::open(&bytes[..]).unwrap();
    let (mut records, mut checkpoints) = (Vec::new(), Vec::new());
    while let Some(item) = reader.next_item().unwrap() {
        match item {
            BundleItem::Record(r) => records.push(r.to_vec()),
            BundleItem::Checkpoint(c) => checkpoints.push(c.to_string()),
            BundleItem::End(_) => break,
        }
    }
    (records, checkpoints)
}

async fn mint(s: &common::Served, w: &support::Enrolled, n: usize) {
    for _ in 0..n / 8 {
        let batch = (0..8).map(|_| w.mint_token(s));
        for r in futures_util::future::join_all(batch).await {
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
    }
}

/// Waits until the tiles directory's checkpoint covers `size` records.
async fn published(dir: &std::path::Path, size: u64) {
    published_within(dir, size, Duration::from_secs(20)).await;
}

/// Waits up to `timeout` until the tiles directory's checkpoint covers `size` records.
pub async fn published_within(dir: &std::path::Path, size: u64, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(dir.join("checkpoint")).unwrap_or_default();
        if text.lines().nth(1).and_then(|l| l.parse::<u64>().ok()) >= Some(size) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tiles never reached size {size}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An appliance publishing into `<data>/public-tiles`, grown over several checkpoints past
/// one full tile, then stopped (its final checkpoint published). Returns it, the tiles
/// directory and the ledger size.
pub async fn published_appliance(name: &str) -> (common::Served, std::path::PathBuf, u64) {
    // The systemd unit's UMask=0077 (both tests of this binary set the same value).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let app = TestAppliance::new(name);
    std::fs::write(
        &app.config_path,
        std::fs::read_to_string(&app.config_path).unwrap() + "\n[tiles]\ndir = \"public-tiles\"\n",
    )
    .unwrap();
    let tiles_dir = app.data().join("public-tiles");
    let mut s = app.serve().await;
    let w = registered_workload(&s, "tiler").await;
    // Several checkpoints (1 s interval), crossing a full 256-record tile.
    for _ in 0..3 {
        mint(&s, &w, 112).await;
        let size = s.await_covered().await;
        published(&tiles_dir, size).await;
    }
    w.revoke_self(&s, "superseded").await;
    // Shutdown signs a last checkpoint, and the publisher publishes it before stopping.
    let size = s.state().ledger.size();
    assert!(size > 300, "only {size} records");
    s.running
        .take()
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    published(&tiles_dir, size).await;
    (s, tiles_dir, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_tiles_a_spec_client_rebuilds_the_exported_ledger_from() {
    let nginx_bin = nginx::require();
    let (s, tiles_dir, size) = published_appliance("tiles-pub").await;
    let ledger = credmint_ledger::Ledger::open(&s.app.data().join("ledger.redb")).unwrap();
    let (key, origin) = (genesis_key_of(&ledger), ledger.origin().to_string());
    drop(ledger);

    // Public files, whatever the appliance's umask.
    use std::os::unix::fs::PermissionsExt;
    for f in ["checkpoint", "tile/0/000", "tile/entries/000"] {
        let mode = std::fs::metadata(tiles_dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{f}");
    }
    let (records, checkpoints) = exported(&s.app);
    assert_eq!(records.len() as u64, size);
    assert!(checkpoints.len() >= 4, "{} checkpoints", checkpoints.len());

    let server = nginx::Nginx::start(&nginx_bin, &tiles_dir);
    let client = TilesClient::new(server.base(), origin, key);
    // The latest checkpoint: the whole ledger from tiles alone, equal to the export.
    let latest = client.checkpoint().await;
    assert_eq!(latest.size, size);
    let entries = client.entries(latest.size).await;
    assert_eq!(
        entries, records,
        "entries served differ from the exported records"
    );
    assert_eq!(client.root_from_level0(latest.size).await, latest.root);
    client.check_level1(latest.size).await;
    // Every checkpoint the ledger signed has its tree served (partial tiles of its size,
    // or the full tile that replaced them).
    let mut partial_hits = 0;
    for note in &checkpoints {
        let cp = credmint_ledger::checkpoint::open(note, &client.origin, &key).unwrap();
        let (root, hits) = client.root_at(cp.size).await;
        assert_eq!(root, cp.root, "root at checkpoint size {}", cp.size);
        partial_hits += hits;
    }
    assert!(
        partial_hits > 0,
        "no partial tile of an earlier checkpoint was served"
    );
    server.stop();
}
