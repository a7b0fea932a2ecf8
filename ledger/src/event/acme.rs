//! ACME (RFC 8555) governance: External Account Binding keys handed to an integration, the
//! accounts bound with them, and those accounts' key changes and deactivation.
//!
//! Why these are ledger events: an ACME account is a standing credential of an integration
//! (it can order certificates until deactivated), so creating the means to make one (the
//! EAB key), binding it, moving it to another key and retiring it are governance changes an
//! auditor must see. The HMAC key itself is never recorded: the appliance derives it inside
//! the HSM from `kid`, so the ledger names only the key id.
//!
//! An account is named by its **account id**: the RFC 7638 JWK thumbprint (SHA-256,
//! base64url without padding, 43 characters) of the key it was created with. A key change
//! keeps the id, so the account URL and every record naming it stay stable.

use super::{EventBody, MAX_NAME};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Largest RFC 7638 canonical JWK recorded (an RSA-8192 modulus is ~1.4 KB of base64url).
pub const MAX_JWK: usize = 4096;

/// An operator created an External Account Binding key for `integration`. The key is
/// derived from `kid` inside the HSM and shown once; it binds at most one account, until
/// `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabCreated {
    pub integration: String,
    /// The EAB key identifier (the `kid` of the EAB JWS), unique in the ledger.
    pub kid: String,
    /// Unix seconds after which the key binds no account.
    pub expires_at: u64,
}

impl EventBody for AcmeEabCreated {
    const TAG: u16 = 20;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.integration);
        w.str(&self.kid);
        w.u64(self.expires_at);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AcmeEabCreated {
            integration: r
                .non_empty_str("acme_eab.integration", MAX_NAME)?
                .to_owned(),
            kid: r.non_empty_str("acme_eab.kid", MAX_NAME)?.to_owned(),
            expires_at: r.u64("acme_eab.expires_at")?,
        })
    }
}

/// An ACME account was created with the EAB key `eab_kid` and belongs to `integration`
/// for life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountCreated {
    /// Account id: base64url(SHA-256(`jwk`)), no padding.
    pub account: String,
    pub integration: String,
    pub eab_kid: String,
    /// The account's public key in RFC 7638 canonical form (required members only, in
    /// lexicographic order, no whitespace): the exact bytes its thumbprint hashes.
    pub jwk: Vec<u8>,
}

impl EventBody for AcmeAccountCreated {
    const TAG: u16 = 21;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.account);
        w.str(&self.integration);
        w.str(&self.eab_kid);
        w.bytes(&self.jwk);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AcmeAccountCreated {
            account: r
                .non_empty_str("acme_account.account", MAX_NAME)?
                .to_owned(),
            integration: r
                .non_empty_str("acme_account.integration", MAX_NAME)?
                .to_owned(),
            eab_kid: r
                .non_empty_str("acme_account.eab_kid", MAX_NAME)?
                .to_owned(),
            jwk: r.bytes("acme_account.jwk", MAX_JWK)?.to_vec(),
        })
    }
}

/// What an [`AcmeAccountChanged`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcmeAccountChange {
    /// RFC 8555 §7.3.5 key rollover: the account now authenticates with this key (RFC 7638
    /// canonical JWK).
    KeyChanged { jwk: Vec<u8> },
    /// RFC 8555 §7.3.6 (by the account) or by an operator: final, the account can do
    /// nothing any more.
    Deactivated,
}

/// An ACME account changed key or was deactivated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountChanged {
    pub account: String,
    pub change: AcmeAccountChange,
}

impl EventBody for AcmeAccountChanged {
    const TAG: u16 = 22;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.account);
        match &self.change {
            AcmeAccountChange::KeyChanged { jwk } => {
                w.u8(1);
                w.bytes(jwk);
            }
            AcmeAccountChange::Deactivated => w.u8(2),
        }
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let account = r.non_empty_str("acme_change.account", MAX_NAME)?.to_owned();
        let change = match r.u8("acme_change.kind")? {
            1 => AcmeAccountChange::KeyChanged {
                jwk: r.bytes("acme_change.jwk", MAX_JWK)?.to_vec(),
            },
            2 => AcmeAccountChange::Deactivated,
            tag => {
                return Err(DecodeError::UnknownTag {
                    field: "acme_change.kind",
                    tag: tag.into(),
                })
            }
        };
        Ok(AcmeAccountChanged { account, change })
    }
}

/// The account id of a canonical JWK: base64url(SHA-256(jwk)) without padding (RFC 7638).
pub fn account_id(canonical_jwk: &[u8]) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(canonical_jwk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use proptest::prelude::*;

    fn encode(e: &Event) -> Vec<u8> {
        let mut w = Writer::new();
        e.encode(&mut w);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut r = Reader::new(bytes);
        let e = Event::decode(&mut r)?;
        r.finish()?;
        Ok(e)
    }

    /// Tag 22 with the body `string account || kind || rest`.
    fn change_body(kind: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = Writer::new();
        body.str("acct");
        body.u8(kind);
        body.fixed(rest);
        let mut w = Writer::new();
        w.u16(AcmeAccountChanged::TAG);
        w.bytes(&body.finish());
        w.finish()
    }

    fn name() -> impl Strategy<Value = String> {
        "\\PC{1,40}"
    }

    fn jwk() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..300)
    }

    fn acme_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (name(), name(), any::<u64>()).prop_map(|(integration, kid, expires_at)| {
                Event::AcmeEabCreated(AcmeEabCreated {
                    integration,
                    kid,
                    expires_at,
                })
            }),
            (name(), name(), name(), jwk()).prop_map(|(account, integration, eab_kid, jwk)| {
                Event::AcmeAccountCreated(AcmeAccountCreated {
                    account,
                    integration,
                    eab_kid,
                    jwk,
                })
            }),
            (name(), prop::option::of(jwk())).prop_map(|(account, key)| {
                let change = match key {
                    Some(jwk) => AcmeAccountChange::KeyChanged { jwk },
                    None => AcmeAccountChange::Deactivated,
                };
                Event::AcmeAccountChanged(AcmeAccountChanged { account, change })
            }),
        ]
    }

    proptest! {
        /// Every ACME event round-trips, every truncation fails, and one flipped byte never
        /// decodes to the same event or to a non-canonical encoding.
        #[test]
        fn acme_events_round_trip_and_flips_never_decode_to_the_same(
            e in acme_event(),
            flip in any::<prop::sample::Index>(),
            x in 1u8..,
        ) {
            let bytes = encode(&e);
            prop_assert_eq!(decode(&bytes), Ok(e.clone()));
            for len in 0..bytes.len() {
                prop_assert!(decode(&bytes[..len]).is_err(), "truncation to {} decoded", len);
            }
            let mut bad = bytes.clone();
            bad[flip.index(bytes.len())] ^= x;
            if let Ok(back) = decode(&bad) {
                prop_assert_eq!(encode(&back), bad);
                prop_assert_ne!(back, e);
            }
        }
    }

    #[test]
    fn change_kind_is_1_with_a_jwk_or_2_with_nothing() {
        let jwk = {
            let mut w = Writer::new();
            w.bytes(b"{}");
            w.finish()
        };
        assert!(decode(&change_body(1, &jwk)).is_ok());
        assert!(decode(&change_body(2, &[])).is_ok());
        for kind in [0, 3, 0x81, 0xff] {
            assert_eq!(
                decode(&change_body(kind, &[])),
                Err(DecodeError::UnknownTag {
                    field: "acme_change.kind",
                    tag: kind.into(),
                })
            );
        }
        assert!(
            decode(&change_body(2, &jwk)).is_err(),
            "a deactivation carries nothing"
        );
        assert!(
            decode(&change_body(1, &[])).is_err(),
            "a key change carries a jwk"
        );
    }

    #[test]
    fn names_must_not_be_empty_and_jwks_are_bounded() {
        let eab = Event::AcmeEabCreated(AcmeEabCreated {
            integration: "billing".into(),
            kid: String::new(),
            expires_at: 1,
        });
        assert!(eab.check_limits().is_err());
        let account = Event::AcmeAccountCreated(AcmeAccountCreated {
            account: "a".into(),
            integration: "billing".into(),
            eab_kid: "k".into(),
            jwk: vec![b'x'; MAX_JWK + 1],
        });
        assert!(account.check_limits().is_err());
    }
}
