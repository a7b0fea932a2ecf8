#![no_main]
//! Ledger records are read back from disk and from export bundles; decoding must reject
//! everything that is not canonical and re-encode exactly what it accepts.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = credmint_ledger::Record::decode(data) {
        assert_eq!(record.encode(), data, "accepted a non-canonical encoding");
    }
});
