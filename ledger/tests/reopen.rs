//! Reopening the file in place (how the appliance recovers from a full disk without a
//! restart): readers holding the old handle delay it, the head is rebuilt from what is
//! durable, and appends continue the same chain.

mod common;

use std::time::Duration;

use common::{entry, genesis_entry, ledger_signer};
use credmint_ledger::{Ledger, Signer, StoreError};

#[test]
fn reopen_waits_for_readers_and_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let ledger = Ledger::create(&path, genesis_entry()).unwrap();
    ledger.append_batch((1..=5).map(entry).collect()).unwrap();
    let root_before = ledger.root();

    // A reader still holding the handle: reopen gives up after its patience, cleanly.
    let held = ledger.database().unwrap();
    assert!(matches!(
        ledger.reopen(Duration::from_millis(50)),
        Err(StoreError::Reopening)
    ));
    assert_eq!(ledger.size(), 6, "a refused reopen changes nothing");
    drop(held);

    ledger.reopen(Duration::from_secs(1)).unwrap();
    assert_eq!(ledger.size(), 6);
    assert_eq!(ledger.root(), root_before);
    assert!(ledger.writable() && !ledger.needs_reopen());
    ledger.append_batch((6..=8).map(entry).collect()).unwrap();
    ledger.sign_checkpoint(&ledger_signer()).unwrap();
    ledger.probe_write().unwrap();
    drop(ledger);

    let reopened = Ledger::open(&path).unwrap();
    assert_eq!(reopened.size(), 9);
    credmint_ledger::verify::verify_ledger(&reopened, &ledger_signer().public_key()).unwrap();
}
