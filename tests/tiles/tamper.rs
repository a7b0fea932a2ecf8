//! The publisher never overwrites a file wrongly: republishing is a no-op, a crash between
//! tiles and checkpoint is re-derived to the same bytes, and a tampered or foreign file
//! stops publication with the file left as found.

use credmint::tiles::{publish, PublishError};
use credmint_ledger::Ledger;

fn read(p: &std::path::Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_is_idempotent_and_a_tampered_tile_is_never_overwritten() {
    let (s, dir, size) = crate::published_appliance("tiles-tamper").await;
    let ledger = Ledger::open(&s.app.data().join("ledger.redb")).unwrap();
    let checkpoint = read(&dir.join("checkpoint"));

    // Nothing new: nothing written.
    let again = publish(&ledger, &dir).unwrap();
    assert_eq!((again.from, again.to, again.written), (size, size, 0));

    // A crash after the tiles but before the checkpoint moved (simulated: the checkpoint
    // is gone, the latest partial tiles too): the next run re-derives them byte for byte.
    let partial = dir.join(format!("tile/0/001.p/{}", size - 256));
    let bundle = dir.join(format!("tile/entries/001.p/{}", size - 256));
    assert!(partial.is_file() && bundle.is_file());
    let (tile_bytes, bundle_bytes) = (read(&partial), read(&bundle));
    std::fs::remove_file(&partial).unwrap();
    std::fs::remove_file(&bundle).unwrap();
    std::fs::remove_file(dir.join("checkpoint")).unwrap();
    let redo = publish(&ledger, &dir).unwrap();
    assert_eq!((redo.from, redo.to), (0, size));
    assert_eq!(read(&partial), tile_bytes);
    assert_eq!(read(&bundle), bundle_bytes);
    assert_eq!(read(&dir.join("checkpoint")), checkpoint);

    // A full tile altered on disk, and the checkpoint gone so the run must re-derive it:
    // publication stops on that file, leaves it as found and writes no checkpoint.
    let full = dir.join("tile/0/000");
    let mut bad = read(&full);
    bad[5] ^= 1;
    std::fs::write(&full, &bad).unwrap();
    std::fs::remove_file(dir.join("checkpoint")).unwrap();
    let err = publish(&ledger, &dir).unwrap_err();
    assert!(
        matches!(&err, PublishError::Conflict { path } if path == &full),
        "{err}"
    );
    assert_eq!(read(&full), bad);
    assert!(!dir.join("checkpoint").exists());

    // A checkpoint of another tree in the directory is refused, and kept.
    let text = String::from_utf8(checkpoint.clone()).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let other_root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    lines[2] = other_root;
    let forged = lines.join("\n");
    std::fs::write(dir.join("checkpoint"), &forged).unwrap();
    let err = publish(&ledger, &dir).unwrap_err();
    assert!(
        matches!(err, PublishError::ForeignCheckpoint { .. }),
        "{err}"
    );
    assert_eq!(read(&dir.join("checkpoint")), forged.as_bytes());
}
