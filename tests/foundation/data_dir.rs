//! `init` keeps the data directory (PIN files, SoftHSM token, ledger) private: a missing one
//! is created 0700, an existing readable one is tightened to 0700, and one that others may
//! write (0775, 1777 like /tmp) is refused before anything is written into it.

use std::os::unix::fs::PermissionsExt;

use crate::common::{text, TestAppliance};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A test appliance whose data directory exists already with `mode`.
fn with_data_dir(name: &str, mode: u32) -> TestAppliance {
    let app = TestAppliance::new(name);
    std::fs::create_dir(app.data()).unwrap();
    std::fs::set_permissions(app.data(), std::fs::Permissions::from_mode(mode)).unwrap();
    app
}

#[test]
fn init_creates_a_missing_data_dir_private_and_tightens_a_readable_one() {
    let fresh = TestAppliance::new("dd-fresh");
    let out = fresh.cli(&["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&fresh.data()), 0o700);

    let app = with_data_dir("dd-0755", 0o755);
    let out = app.cli(&["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&app.data()), 0o700);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(was 0755)"), "{stdout}");
    // Already private: nothing to report the second time.
    let again = app.cli(&["init"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("already initialised: nothing changed"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn init_refuses_a_data_dir_others_may_write_and_writes_nothing_into_it() {
    for (name, dir_mode, who) in [
        ("dd-1777", 0o1777, "everyone"),
        ("dd-0777", 0o777, "everyone"),
        ("dd-0775", 0o775, "its group"),
    ] {
        let app = with_data_dir(name, dir_mode);
        let out = app.cli(&["init"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("writable by {who} (mode {dir_mode:04o})")),
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&app.data().display().to_string()),
            "{stderr}"
        );
        assert_eq!(mode(&app.data()), dir_mode, "{name}: left as it was");
        let entries: Vec<_> = std::fs::read_dir(app.data()).unwrap().collect();
        assert!(entries.is_empty(), "{name}: wrote {entries:?}");
    }

    // An initialised data directory opened up later: serve refuses it before using it.
    let app = TestAppliance::new("dd-opened");
    let out = app.cli(&["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::set_permissions(app.data(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = app.cli(&["serve"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("writable by everyone (mode 1777)"),
        "{stderr}"
    );
}
