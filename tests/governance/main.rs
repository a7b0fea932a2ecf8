//! Integration governance over real HTTPS with a real SoftHSM token: dual control,
//! recertification, decommissioning (checked with openssl OCSP), inventory, anomaly signals;
//! every run ends with the exported ledger passing the offline auditor's semantic rules.

mod audiences;
#[path = "../common/mod.rs"]
mod common;
mod console;
mod decommission;
mod dual_control;
mod helpers;
mod inventory;
mod monitoring;
mod operators;
mod recertify;
mod signals;
#[path = "../issuance/support.rs"]
mod support;
