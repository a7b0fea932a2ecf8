#![no_main]
//! Receipts (c2sp.org/tlog-proof) are handed to the offline auditor by anyone.
//! The body is `entries::receipt`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::receipt(data);
});
