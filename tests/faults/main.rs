//! Faults the appliance must survive on its own, without a restart: a full disk.

#[path = "../common/mod.rs"]
mod common;
mod disk_full;
#[path = "../issuance/support.rs"]
#[allow(dead_code)]
mod support;
