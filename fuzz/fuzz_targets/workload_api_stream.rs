#![no_main]
//! HTTP/2 client bytes on the agent's Workload API socket, through the `:authority` rewrite.
//! The body is `entries::workload_api_stream`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::workload_api_stream(data);
});
