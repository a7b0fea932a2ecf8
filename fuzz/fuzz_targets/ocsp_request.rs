#![no_main]
//! OCSP requests come from anyone (public responder).
//! The body is `entries::ocsp_request`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::ocsp_request(data);
});
