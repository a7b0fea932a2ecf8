#![no_main]
//! PKCS#10 requests come from unauthenticated workloads (enrollment).
//! The body is `entries::csr`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::csr(data);
});
