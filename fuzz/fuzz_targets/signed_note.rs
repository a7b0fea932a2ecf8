#![no_main]
//! Checkpoints (C2SP signed notes) are fetched from appliances and mirrors.
//! The body is `entries::signed_note`, which `tests/fuzz_replay.rs` also runs on the committed corpus.
use libfuzzer_sys::fuzz_target;

#[path = "../entries.rs"]
mod entries;

fuzz_target!(|data: &[u8]| {
    entries::signed_note(data);
});
