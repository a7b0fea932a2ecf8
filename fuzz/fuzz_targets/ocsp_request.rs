#![no_main]
//! OCSP requests come from anyone (public responder).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = credmint::status::ocsp::parse_request(data);
});
