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
