#![no_main]
//! Export bundles are the auditor's input and may be hostile.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = credmint_ledger::audit::AuditOptions {
        ledger_key: [7u8; 32],
        since: None,
        key_name: None,
        semantic: true,
    };
    let _ = credmint_ledger::audit::verify_bundle(data, &opts, &mut |_, _| {}, &mut |_, _| {});
});
