//! Shared fixtures: deterministic keys, genesis and events.
#![allow(dead_code)]

use credmint_ledger::{
    CertificateIssued, DalekSigner, Event, Genesis, KeyAlgorithm, KeyInfo, KeyRole, NewEntry,
    Revoked, Signer,
};

pub const ORIGIN: &str = "credmint.test/ledger";

/// The ledger key used by tests (seed 0x07..).
pub fn ledger_signer() -> DalekSigner {
    DalekSigner::from_seed([7u8; 32])
}

/// A different key, for "re-signed with another key" tampering.
pub fn other_signer() -> DalekSigner {
    DalekSigner::from_seed([9u8; 32])
}

pub fn genesis_event(ledger_pk: &[u8; 32]) -> Event {
    Event::Genesis(Genesis {
        origin: ORIGIN.into(),
        keys: vec![
            KeyInfo {
                role: KeyRole::Ca,
                algorithm: KeyAlgorithm::EcdsaP256,
                label: "ca".into(),
                spki_der: vec![0x30, 0x59, 0x01, 0x02],
            },
            KeyInfo::ed25519(KeyRole::Ledger, "ledger", ledger_pk),
        ],
        config_digest: [0x11; 32],
        ca_certificate_der: vec![0x30, 0x82, 0x01, 0x00],
    })
}

pub fn genesis_entry() -> NewEntry {
    NewEntry {
        timestamp_ms: 1_700_000_000_000,
        actor: "system".into(),
        event: genesis_event(&ledger_signer().public_key()),
    }
}

/// Deterministic non-genesis event number `i` (alternating kinds).
pub fn event(i: u64) -> Event {
    let serial = i.to_be_bytes().to_vec();
    if i % 3 == 2 {
        Event::Revoked(Revoked { serial, reason: 1 })
    } else {
        Event::CertificateIssued(CertificateIssued {
            serial,
            integration: format!("integration-{}", i % 5),
            subject: format!("spiffe://credmint.test/workload/{i}"),
            not_before: 1_700_000_000 + i,
            not_after: 1_700_086_400 + i,
            key_fingerprint: [(i % 251) as u8; 32],
        })
    }
}

/// Deterministic entry number `i` (i >= 1), timestamps non-decreasing.
pub fn entry(i: u64) -> NewEntry {
    NewEntry {
        timestamp_ms: 1_700_000_000_000 + i / 2,
        actor: format!("actor-{}", i % 4),
        event: event(i),
    }
}
