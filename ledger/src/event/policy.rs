//! Integration policy extensions (FORMAT.md §3.4.1): per-integration policy added after
//! the first ledger version, without a new record version.
//!
//! Why an extension block and not new fields: IntegrationSpec sits in the middle of three
//! event bodies, so a field appended at its end would be read as the next field of the
//! body by every existing record. Instead the status byte's high bit says "an extension
//! block follows"; every record written before extensions existed has it clear and keeps
//! its exact bytes (and hash). Each extension is `(u16 number, bytes)`, numbers strictly
//! increasing, so a spec still has exactly one encoding; an unknown number is a decode
//! error, because a verifier that cannot read a policy cannot check credentials against it.
//!
//! Extension numbers are never reused: 1 = allowed JWT audiences; 2 = delegation policy
//! (RFC 8693 token exchange); 3 = ACME policy.

use super::MAX_NAME;
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Set on the encoded status byte when an extension block follows it.
pub const EXTENSIONS_FLAG: u8 = 0x80;
/// Most extensions one spec may carry (there are far fewer numbers in use).
const MAX_EXTENSIONS: usize = 64;
/// Largest encoded body of one extension.
pub const MAX_EXTENSION_BODY: usize = 65_536;
/// Most audiences an integration may list.
pub const MAX_AUDIENCES: usize = 64;

/// Extension 1: allowed JWT audiences.
pub const EXT_AUDIENCES: u16 = 1;
/// Extension 3: ACME policy.
pub const EXT_ACME: u16 = 3;
/// Extension 3 flag: the integration's DNS names are pre-authorized for ACME (orders get
/// valid authorizations without a challenge, RFC 8555 §7.1.3).
pub const ACME_PREAUTHORIZED: u8 = 0x01;

/// The policy extensions of one integration. `Default` is "no extension", the state of every
/// integration registered before extensions existed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyExtensions {
    /// Extension 1. `None`: any audience (the default, and the only behaviour before this
    /// extension existed). `Some(list)`: tokens may name only these audiences; an empty
    /// list allows no token at all.
    pub audiences: Option<Vec<String>>,
    /// Extension 3, flag [`ACME_PREAUTHORIZED`]. `false` (the extension absent): ACME
    /// clients must prove control of every name (http-01). `true`: the operator vouched
    /// for the integration's `dns_names`, so ACME authorizations are valid at once.
    pub acme_preauthorized: bool,
}

impl PolicyExtensions {
    /// Whether no extension is present (the spec then encodes exactly as before).
    pub fn is_empty(&self) -> bool {
        self == &PolicyExtensions::default()
    }

    /// Writes the extension block: count, then `(number, body)` in increasing order.
    pub(crate) fn encode(&self, w: &mut Writer) {
        let mut exts: Vec<(u16, Vec<u8>)> = Vec::new();
        if let Some(aud) = &self.audiences {
            debug_assert!(aud.windows(2).all(|w| w[0] < w[1]), "audiences unsorted");
            let mut b = Writer::new();
            b.str_list(aud);
            exts.push((EXT_AUDIENCES, b.finish()));
        }
        if self.acme_preauthorized {
            exts.push((EXT_ACME, vec![ACME_PREAUTHORIZED]));
        }
        w.count(exts.len());
        for (number, body) in exts {
            w.u16(number);
            w.bytes(&body);
        }
    }

    /// Reads a block written by [`PolicyExtensions::encode`]. An empty block is refused:
    /// it would be a second encoding of "no extension" (flag clear).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count("integration.extensions", MAX_EXTENSIONS)?;
        if n == 0 {
            return Err(invalid(
                "integration.extensions",
                "an extension block must hold at least one extension",
            ));
        }
        let mut out = PolicyExtensions::default();
        let mut last = 0u16;
        for _ in 0..n {
            let number = r.u16("integration.extension.number")?;
            if number <= last {
                return Err(invalid(
                    "integration.extension.number",
                    "extension numbers must be strictly increasing",
                ));
            }
            last = number;
            let body = r.bytes("integration.extension.body", MAX_EXTENSION_BODY)?;
            let mut br = Reader::new(body);
            match number {
                EXT_AUDIENCES => {
                    out.audiences = Some(decode_audiences(&mut br)?);
                }
                EXT_ACME => {
                    // One flags byte; no flag set would be a second encoding of "absent",
                    // and an unknown flag is policy this verifier cannot check.
                    if br.u8("integration.acme.flags")? != ACME_PREAUTHORIZED {
                        return Err(invalid(
                            "integration.acme.flags",
                            "the only ACME flag is 0x01 (pre-authorized names)",
                        ));
                    }
                    out.acme_preauthorized = true;
                }
                _ => {
                    return Err(DecodeError::UnknownTag {
                        field: "integration.extension.number",
                        tag: number,
                    })
                }
            }
            br.finish()?;
        }
        Ok(out)
    }

    /// Why `new` grants more than `old` through an extension, if it does (FORMAT.md §13.3).
    pub fn increases_authority(old: &Self, new: &Self) -> Option<String> {
        if new.acme_preauthorized && !old.acme_preauthorized {
            return Some("pre-authorizes its DNS names for ACME".into());
        }
        match (&old.audiences, &new.audiences) {
            (Some(_), None) => Some("lifts the audience restriction".into()),
            (Some(old), Some(new)) => new
                .iter()
                .find(|a| !old.contains(a))
                .map(|a| format!("adds audience {a:?}")),
            (None, _) => None,
        }
    }

    /// Whether ACME orders of this integration skip challenges (extension 3).
    pub fn acme_preauthorized(&self) -> bool {
        self.acme_preauthorized
    }

    /// Whether a token for `audience` is within extension 1.
    pub fn allows_audience(&self, audience: &str) -> bool {
        self.audiences
            .as_ref()
            .is_none_or(|list| list.iter().any(|a| a == audience))
    }
}

/// Audiences: a list of non-empty strings, sorted and without duplicates, so one set has
/// one encoding.
fn decode_audiences(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    let list = r.str_list("integration.audiences", MAX_AUDIENCES, MAX_NAME)?;
    if list.iter().any(String::is_empty) {
        return Err(invalid(
            "integration.audiences",
            "an audience must not be empty",
        ));
    }
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            "integration.audiences",
            "audiences must be sorted and distinct",
        ));
    }
    Ok(list)
}

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{IntegrationSpec, IntegrationStatus};
    use proptest::prelude::*;

    fn spec(policy: PolicyExtensions) -> IntegrationSpec {
        IntegrationSpec {
            status: IntegrationStatus::Suspended,
            policy,
            ..crate::audit::bench::spec(1)
        }
    }

    fn encode(s: &IntegrationSpec) -> Vec<u8> {
        let mut w = Writer::new();
        s.encode(&mut w);
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<IntegrationSpec, DecodeError> {
        let mut r = Reader::new(bytes);
        let s = IntegrationSpec::decode(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    #[test]
    fn no_extension_keeps_the_first_release_encoding() {
        let bytes = encode(&spec(PolicyExtensions::default()));
        // The status byte is the last one, unflagged.
        assert_eq!(bytes.last(), Some(&2));
    }

    #[test]
    fn an_empty_audience_list_is_not_the_same_as_none() {
        let none = spec(PolicyExtensions::default());
        let empty = spec(PolicyExtensions {
            audiences: Some(vec![]),
            ..Default::default()
        });
        assert_ne!(encode(&none), encode(&empty));
        assert_eq!(decode(&encode(&empty)).unwrap(), empty);
        assert!(!empty.policy.allows_audience("api"));
        assert!(none.policy.allows_audience("api"));
    }

    #[test]
    fn widening_is_an_increase_and_narrowing_is_not() {
        let any = PolicyExtensions::default();
        let api = PolicyExtensions {
            audiences: Some(vec!["api".into()]),
            ..Default::default()
        };
        let both = PolicyExtensions {
            audiences: Some(vec!["api".into(), "web".into()]),
            ..Default::default()
        };
        assert!(PolicyExtensions::increases_authority(&api, &any).is_some());
        assert!(PolicyExtensions::increases_authority(&api, &both).is_some());
        assert!(PolicyExtensions::increases_authority(&both, &api).is_none());
        assert!(PolicyExtensions::increases_authority(&any, &api).is_none());
        assert!(PolicyExtensions::increases_authority(&api, &api).is_none());
    }

    #[test]
    fn acme_preauthorization_is_extension_3_and_an_increase() {
        let pre = PolicyExtensions {
            acme_preauthorized: true,
            ..Default::default()
        };
        let bytes = encode(&spec(pre.clone()));
        // Count 1 (u32), number 3 (u16), body length 1 (u32), flags 0x01.
        let tail = [0, 0, 0, 1, 0, 3, 0, 0, 0, 1, 1];
        assert_eq!(&bytes[bytes.len() - tail.len()..], &tail[..]);
        assert_eq!(bytes.last(), Some(&1));
        assert_eq!(decode(&bytes).unwrap().policy, pre);
        let mut zero = bytes.clone();
        *zero.last_mut().unwrap() = 0;
        assert!(
            decode(&zero).is_err(),
            "no flag set is not a second 'absent'"
        );
        let mut unknown = bytes;
        *unknown.last_mut().unwrap() = 0x03;
        assert!(decode(&unknown).is_err(), "unknown flag");
        let none = PolicyExtensions::default();
        assert!(PolicyExtensions::increases_authority(&none, &pre).is_some());
        assert!(PolicyExtensions::increases_authority(&pre, &none).is_none());
    }

    proptest! {
        /// Any canonical audience set round-trips, keeps the status, and one flipped byte
        /// never decodes to the same spec.
        #[test]
        fn audiences_round_trip(set in proptest::collection::btree_set("[a-z:/.]{1,12}", 0..8), acme in any::<bool>(), flip in any::<prop::sample::Index>()) {
            let s = spec(PolicyExtensions { audiences: Some(set.into_iter().collect()), acme_preauthorized: acme });
            let bytes = encode(&s);
            prop_assert_eq!(decode(&bytes).unwrap(), s.clone());
            let mut bad = bytes.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x01;
            prop_assert_ne!(decode(&bad).ok(), Some(s));
        }
    }
}
