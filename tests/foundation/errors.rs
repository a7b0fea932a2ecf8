//! Wrong PIN, missing token, missing module and bad config each give their own error and
//! exit code, and no PIN appears in any output.

use credmint::hsm::{Hsm, HsmError};

use crate::common::{text, TestAppliance};

fn assert_fails(app: &TestAppliance, args: &[&str], code: i32, needle: &str, secret: &str) {
    let out = app.cli(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:{stdout}\nstderr:{stderr}"
    );
    assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if !secret.is_empty() {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "secret leaked:\n{stderr}"
        );
    }
}

#[test]
fn wrong_pin_missing_token_and_missing_module_are_distinct() {
    let app = TestAppliance::new("errors");
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let real_pin = app.user_pin();

    let pin_path = app.data().join("hsm-user.pin");
    std::fs::write(&pin_path, "0000-not-the-pin").unwrap();
    assert_fails(&app, &["serve"], 12, "wrong PIN", "0000-not-the-pin");
    std::fs::write(&pin_path, &real_pin).unwrap();

    app.edit_config(
        &format!("token_label = \"{}\"", app.token_label),
        "token_label = \"no-such-token\"",
    );
    assert_fails(
        &app,
        &["serve"],
        11,
        "no token labelled \"no-such-token\"",
        &real_pin,
    );
    app.edit_config(
        "token_label = \"no-such-token\"",
        &format!("token_label = \"{}\"", app.token_label),
    );

    app.edit_config(
        "/usr/lib/softhsm/libsofthsm2.so",
        "/nonexistent/libpkcs11.so",
    );
    assert_fails(
        &app,
        &["serve"],
        10,
        "cannot load PKCS#11 module /nonexistent/libpkcs11.so",
        &real_pin,
    );
    app.edit_config(
        "/nonexistent/libpkcs11.so",
        "/usr/lib/softhsm/libsofthsm2.so",
    );

    std::fs::remove_file(&pin_path).unwrap();
    assert_fails(&app, &["serve"], 16, "hsm-user.pin", "");
    std::fs::write(&pin_path, &real_pin).unwrap();

    app.edit_config("sessions = 4", "sessions = 4\nbogus_key = 1");
    assert_fails(&app, &["serve"], 3, "bogus_key", "");
}

#[test]
fn serve_refuses_a_missing_token_directory_and_does_not_recreate_it() {
    let app = TestAppliance::new("no-token-dir");
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let tokens = app.data().join("softhsm-tokens");
    let away = app.data().join("softhsm-tokens.lost");
    std::fs::rename(&tokens, &away).unwrap();
    assert_fails(
        &app,
        &["serve"],
        4,
        &format!(
            "SoftHSM2 token directory (hsm.softhsm.token_dir) {}: missing",
            tokens.display()
        ),
        &app.user_pin(),
    );
    assert!(!tokens.exists(), "serve recreated {}", tokens.display());
    // Put back, it serves again (and `init` is the one verb that may create it).
    std::fs::rename(&away, &tokens).unwrap();
    let server = app.spawn_server();
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status:?}: {log:?}");
}

#[test]
fn in_process_errors_are_typed() {
    let app = TestAppliance::new("typed");
    app.init_in_process();
    let mut cfg = app.config().hsm;
    cfg.pin = credmint::secret::SecretSource::Env("CREDMINT_TEST_WRONG_PIN".into());
    std::env::set_var("CREDMINT_TEST_WRONG_PIN", "definitely-wrong");
    let err = Hsm::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::WrongPin { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("definitely-wrong"));

    let mut cfg = app.config().hsm;
    cfg.token_label = "absent".into();
    assert!(matches!(
        Hsm::open(&cfg).unwrap_err(),
        HsmError::TokenNotFound { .. }
    ));

    let mut cfg = app.config().hsm;
    cfg.module = "/nonexistent/module.so".into();
    assert!(matches!(
        Hsm::open(&cfg).unwrap_err(),
        HsmError::ModuleLoad { .. }
    ));
}

fn pkcs11_tool(app: &TestAppliance, args: &[&str]) -> String {
    let out = std::process::Command::new(crate::common::require_tool("pkcs11-tool"))
        .args(["--module", crate::common::SOFTHSM_MODULE])
        .args(["--token-label", &app.token_label, "--login", "--pin"])
        .arg(app.user_pin())
        .args(args)
        .env("SOFTHSM2_CONF", app.data().join("softhsm2.conf"))
        .output()
        .expect("pkcs11-tool");
    assert!(
        out.status.success(),
        "pkcs11-tool {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn keys_missing_at_serve_exit_14_and_config_disagreeing_with_the_ledger_exits_3() {
    let app = TestAppliance::new("keys-missing");
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let pin = app.user_pin();

    // keys.* naming something the ledger's key history does not: refused, key named.
    let ca_line = "ca = { label = \"ca\", algorithm = \"ecdsa-p256\" }";
    app.edit_config(
        ca_line,
        "ca = { label = \"ca-other\", algorithm = \"ecdsa-p256\" }",
    );
    assert_fails(&app, &["serve"], 3, "keys.ca.label = \"ca-other\"", &pin);
    app.edit_config(
        "ca = { label = \"ca-other\", algorithm = \"ecdsa-p256\" }",
        ca_line,
    );
    let token_line = "token = { label = \"token\", algorithm = \"ecdsa-p256\" }";
    app.edit_config(
        token_line,
        "token = { label = \"token\", algorithm = \"ed25519\" }",
    );
    assert_fails(
        &app,
        &["serve"],
        3,
        "keys.token.algorithm = \"ed25519\"",
        &pin,
    );
    app.edit_config(
        "token = { label = \"token\", algorithm = \"ed25519\" }",
        token_line,
    );

    // A key of the ledger missing from the token: 14, naming it (token key, then CA key).
    pkcs11_tool(
        &app,
        &["--delete-object", "--type", "privkey", "--label", "token"],
    );
    assert_fails(
        &app,
        &["serve"],
        14,
        "no private key labelled \"token\"",
        &pin,
    );
    pkcs11_tool(
        &app,
        &["--delete-object", "--type", "privkey", "--label", "ca"],
    );
    assert_fails(&app, &["serve"], 14, "no private key labelled \"ca\"", &pin);
}

#[test]
fn init_with_an_existing_ledger_and_a_fresh_token_creates_nothing() {
    let app = TestAppliance::new("fresh-token");
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    // The token store is lost (a fresh token); the ledger is still there.
    let tokens = app.data().join("softhsm-tokens");
    std::fs::remove_dir_all(&tokens).unwrap();
    std::fs::create_dir_all(&tokens).unwrap();
    let ledger_state = || {
        let l = credmint_ledger::Ledger::open(&app.data().join("ledger.redb")).unwrap();
        (l.size(), l.root())
    };
    let ledger_before = ledger_state();
    assert_fails(
        &app,
        &["init"],
        22,
        &format!("token \"{}\" does not exist", app.token_label),
        "",
    );
    assert_eq!(
        std::fs::read_dir(&tokens).unwrap().count(),
        0,
        "no token (and so no key pair) was created"
    );
    assert!(ledger_state() == ledger_before, "ledger changed");
}

#[test]
fn init_names_the_missing_softhsm_config_template() {
    let app = TestAppliance::new("no-template");
    let template = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("firmware-config/softhsm2.conf")
        .display()
        .to_string();
    app.edit_config(&template, "/nonexistent/dir/softhsm2.conf");
    assert_fails(
        &app,
        &["init"],
        4,
        "SoftHSM2 config template (hsm.softhsm.conf_template) /nonexistent/dir/softhsm2.conf",
        "",
    );
}

#[test]
fn ledger_export_into_a_missing_directory_names_it_and_exits_4() {
    let app = TestAppliance::new("export-dir");
    let init = app.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let out = app.dir.path().join("no-such-dir/ledger.bundle");
    let out = out.to_str().unwrap();
    let missing = app.dir.path().join("no-such-dir").display().to_string();
    // Online (no appliance needs to run: the path is checked first) and offline.
    assert_fails(
        &app,
        &["ledger", "export", "--out", out],
        4,
        &format!("directory {missing} does not exist"),
        "",
    );
    assert_fails(
        &app,
        &["ledger", "export", "--offline", "--out", out],
        4,
        &format!("directory {missing} does not exist"),
        "",
    );
    // And into an existing directory it works offline.
    let ok = app.cli(&[
        "ledger",
        "export",
        "--offline",
        "--out",
        app.dir.path().join("ledger.bundle").to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
}
