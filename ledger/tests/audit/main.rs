//! The offline auditor end to end: export bundles from real ledgers, verify
//! them (bytes, keys, meaning, earlier checkpoints), tamper with them, query
//! them, and drive the `credmint-audit` binary. One test binary, several rooms.

mod acme;
mod bundle;
mod cli;
mod fixture;
mod monitors;
mod operators;
mod semantic;
mod vectors;
