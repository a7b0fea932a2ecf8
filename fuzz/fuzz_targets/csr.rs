#![no_main]
//! PKCS#10 requests come from unauthenticated workloads (enrollment).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = credmint::issue::parse_csr(data);
});
