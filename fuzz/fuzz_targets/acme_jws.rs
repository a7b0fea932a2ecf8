#![no_main]
//! ACME requests (flattened JWS) come from anyone on the network.
//! The body is `entries::acme_jws`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::acme_jws(data);
});
