//! credmint: a hardware-backed credential signing appliance for non-human identities.
//!
//! Layout, in the order a request travels:
//! `edge` (connection caps and timeouts) -> `api` (routes, error mapping) -> `app` (shared state) -> `ca` (X.509 building) ->
//! `hsm` (PKCS#11 custody, the only code that touches keys) -> `credmint_ledger`
//! (append-only, hash-chained, Merkle-tree ledger). `init` provisions token, keys, CA and
//! genesis; `serve` runs the listener; `checkpointer` signs tree heads on a schedule; `tiles` publishes them as tlog-tiles;
//! `metrics` holds every Prometheus series (`GET /metrics`); `bench` measures the hot paths.

pub mod acme;
pub mod agent;
pub mod api;
pub mod app;
pub mod bench;
pub mod ca;
pub mod checkpointer;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod edge;
pub mod fsutil;
pub mod governance;
pub mod health;
pub mod hsm;
pub mod init;
pub mod issuance;
pub mod issue;
pub mod keycheck;
pub mod keyset;
pub mod metrics;
pub mod notify;
pub mod operator;
pub mod policy;
pub mod registry;
pub mod revoke;
pub mod rotation;
pub mod secret;
pub mod sequencer;
pub mod serve;
pub mod signals;
pub mod status;
pub mod telemetry;
pub mod tiles;
pub mod tls;
pub mod token;
pub mod wire;
pub mod witness;
