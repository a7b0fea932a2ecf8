//! Every redb table the ledger owns, listed once.
//!
//! Public **for tools and tests** (the auditor's raw reads, tamper tests):
//! the appliance must never write these tables itself — only
//! `Ledger::append_batch*` and `Ledger::sign_checkpoint` do, so that records,
//! tree nodes and checkpoints always change together in one transaction.
//! Table names carry a `credmint_ledger_` prefix so the appliance's own
//! projection tables in the same file cannot collide with them.

use redb::TableDefinition;

/// Record index -> canonical record encoding (FORMAT.md §2).
pub const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("credmint_ledger_records");

/// (level, index) -> hash of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)`; level 0 holds leaf hashes.
/// Written in the same transaction as the records that complete each node.
pub const NODES: TableDefinition<(u8, u64), [u8; 32]> =
    TableDefinition::new("credmint_ledger_nodes");

/// Tree size -> signed checkpoint note text (one note per size; further
/// signatures over the same body are added as extra signature lines).
pub const CHECKPOINTS: TableDefinition<u64, &str> =
    TableDefinition::new("credmint_ledger_checkpoints");

/// Small metadata: [`META_ORIGIN`] and [`META_FORMAT`].
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("credmint_ledger_meta");

/// META key: the origin (UTF-8), copied from genesis at creation.
pub const META_ORIGIN: &str = "origin";
/// META key: storage layout version, one byte ([`STORE_FORMAT_VERSION`]).
pub const META_FORMAT: &str = "format_version";
/// META key: the indices (u64 big-endian, concatenated, ascending) of every
/// `KeyRotated` record, so `open` rebuilds the keys in force without a scan.
/// Absent means no rotation.
pub const META_KEY_ROTATIONS: &str = "key_rotations";
/// Current storage layout version.
pub const STORE_FORMAT_VERSION: u8 = 1;
