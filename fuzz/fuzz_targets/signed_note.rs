#![no_main]
//! Checkpoints (C2SP signed notes) are fetched from appliances and mirrors.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(note) = credmint_ledger::note::Note::parse(text) {
            let _ = credmint_ledger::Checkpoint::parse_body(&note.text);
        }
        let _ = credmint_ledger::checkpoint::open(text, "example.org/log", &[7u8; 32]);
    }
});
