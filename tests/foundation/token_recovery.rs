//! The embedded SoftHSM token survives a crash during its login rewrite: SoftHSM 2.6
//! truncates and rewrites `token.object` in place on every login, so a kill at that moment
//! leaves it cut short and, without the recovery copy, the token (and every key) is gone.

use std::path::{Path, PathBuf};

use credmint::hsm::recovery::is_complete_object;

use crate::common::TestAppliance;

/// The live token directory of the appliance's own SoftHSM store (one token in it).
fn live_token_dir(app: &TestAppliance) -> PathBuf {
    let root = app.data().join("softhsm-tokens");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

fn object_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "object"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_token_object_cut_short_by_a_crash_is_restored_and_serves() {
    let app = TestAppliance::new("recover");
    let (status, _) = app.spawn_server().terminate();
    assert!(status.success());
    let live = live_token_dir(&app);
    let copy = app
        .data()
        .join("token-recovery")
        .join(live.file_name().unwrap());

    // Every object file SoftHSM really wrote (token, 3 key pairs, the ACME EAB secret key)
    // is understood, and the copy holds each of them byte for byte.
    let files = object_files(&live);
    assert_eq!(
        files.len(),
        8,
        "token.object + 3 key pairs + 1 secret key: {files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(is_complete_object(&bytes), "{} not understood", f.display());
        let copied = std::fs::read(copy.join(f.file_name().unwrap())).unwrap();
        assert_eq!(copied, bytes, "{}", f.display());
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(app.data().join("token-recovery"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // Killed inside the rewrite: empty; cut exactly between two attributes (the label
    // survives, the PIN blobs do not); cut inside an attribute.
    let token_object = live.join("token.object");
    let whole = std::fs::read(&token_object).unwrap();
    for cut in [0, 64, whole.len() / 2] {
        std::fs::write(&token_object, &whole[..cut]).unwrap();
        let mut server = app.spawn_serve();
        server.wait_for(
            "restored from the recovery copy",
            std::time::Duration::from_secs(5),
        );
        let (status, lines) = server.terminate();
        assert!(status.success(), "cut at {cut}: {lines:?}");
        assert!(
            is_complete_object(&std::fs::read(&token_object).unwrap()),
            "cut at {cut}"
        );
    }
}
