//! `credmint bench seed` never writes synthetic events into a real appliance's ledger: only
//! into one whose genesis was made by `credmint init --benchmark`.

use credmint_ledger::Ledger;

use crate::common::{text, TestAppliance};

fn ledger_state(app: &TestAppliance) -> (u64, [u8; 32]) {
    let l = Ledger::open(&app.data().join("ledger.redb")).unwrap();
    (l.size(), l.root())
}

#[test]
fn bench_seed_refuses_a_real_appliance_ledger_and_fills_a_benchmark_one() {
    let real = TestAppliance::new("seed-real");
    let init = real.cli(&["init"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let before = ledger_state(&real);
    let out = real.cli(&["bench", "seed", "--certs", "5"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(23), "{stderr}");
    assert!(
        stderr.contains("refusing to write benchmark data into ledger")
            && stderr.contains("its genesis is by \"system:init\""),
        "{stderr}"
    );
    assert!(ledger_state(&real) == before, "the real ledger was written");

    // A throwaway benchmark appliance: seeded, and its ledger still serves.
    let bench = TestAppliance::new("seed-bench");
    let init = bench.cli(&["init", "--benchmark"]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let (size, _) = ledger_state(&bench);
    let serials = bench.dir.path().join("serials.txt");
    let out = bench.cli(&[
        "bench",
        "seed",
        "--certs",
        "5",
        "--serials-out",
        serials.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        ledger_state(&bench).0,
        size + 1 + 5,
        "registration + 5 issuances"
    );
    assert_eq!(
        std::fs::read_to_string(&serials).unwrap().lines().count(),
        5
    );
    // A second `init --benchmark` of a real appliance does not turn its ledger into one.
    let again = real.cli(&["init", "--benchmark"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let out = real.cli(&["bench", "seed", "--certs", "5"]);
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert!(ledger_state(&real) == before);
}

/// The side-by-side harness runs a plain `credmint init`; the environment variable marks
/// that ledger as a benchmark ledger instead of the flag.
#[test]
fn benchmark_ledger_from_the_environment_for_scripts_that_run_plain_init() {
    let bench = TestAppliance::new("seed-env");
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_credmint"))
        .arg("--config")
        .arg(&bench.config_path)
        .arg("init")
        .env("CREDMINT_BENCHMARK_LEDGER", "true")
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", text(&init.stderr));
    let out = bench.cli(&["bench", "seed", "--certs", "3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
