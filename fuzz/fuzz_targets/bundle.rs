#![no_main]
//! Export bundles are the auditor's input and may be hostile.
//! The body is `entries::bundle`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::bundle(data);
});
