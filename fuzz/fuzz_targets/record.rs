#![no_main]
//! Ledger records are read back from disk and from export bundles; decoding must reject
//! The body is `entries::record`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::record(data);
});
