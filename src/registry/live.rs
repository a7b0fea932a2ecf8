//! The live-credential index: what revoke-all, decommission and the inventory need
//! without walking every credential an integration was ever issued.

/// Which kind of credential a live row names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveCredential {
    Certificate(Vec<u8>),
    Token(String),
}

const CERT: u8 = 1;
const TOKEN: u8 = 2;

/// Row key: integration, 0x00, not_after (u64 big-endian), kind, id. Integration names
/// are identifiers (no NUL), so the prefix of one never runs into another's.
pub fn key(integration: &str, not_after: u64, credential: &LiveCredential) -> Vec<u8> {
    let mut k = bound(integration, not_after);
    match credential {
        LiveCredential::Certificate(serial) => {
            k.push(CERT);
            k.extend_from_slice(serial);
        }
        LiveCredential::Token(jti) => {
            k.push(TOKEN);
            k.extend_from_slice(jti.as_bytes());
        }
    }
    k
}

/// First key of `integration` whose credential is still valid at `not_after`.
pub fn bound(integration: &str, not_after: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(integration.len() + 10);
    k.extend_from_slice(integration.as_bytes());
    k.push(0);
    k.extend_from_slice(&not_after.to_be_bytes());
    k
}

/// Key just past every row of `integration`.
pub fn end(integration: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(integration.len() + 1);
    k.extend_from_slice(integration.as_bytes());
    k.push(1);
    k
}

/// The expiry (unix seconds) and credential a row key names, if it is well formed.
pub fn parse(key: &[u8], integration: &str) -> Option<(u64, LiveCredential)> {
    let rest = key
        .strip_prefix(integration.as_bytes())?
        .strip_prefix(&[0])?;
    let not_after = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let (kind, id) = rest.get(8..)?.split_first()?;
    let credential = match *kind {
        CERT => LiveCredential::Certificate(id.to_vec()),
        TOKEN => LiveCredential::Token(String::from_utf8(id.to_vec()).ok()?),
        _ => return None,
    };
    Some((not_after, credential))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_round_trip_and_sort_by_integration_then_expiry(
            a in "[a-z][a-z0-9-]{0,20}", t1 in any::<u64>(), t2 in any::<u64>(),
            serial in proptest::collection::vec(any::<u8>(), 1..20),
        ) {
            let c = LiveCredential::Certificate(serial);
            let k1 = key(&a, t1, &c);
            prop_assert_eq!(parse(&k1, &a), Some((t1, c.clone())));
            let k2 = key(&a, t2, &c);
            prop_assert_eq!(k1 < k2, t1 < t2);
            prop_assert!(bound(&a, t1) <= k1 && k1 < end(&a));
            // Another integration whose name extends this one never falls in its range.
            let longer = format!("{a}x");
            let k3 = key(&longer, t1, &c);
            prop_assert!(!(bound(&a, 0) <= k3 && k3 < end(&a)));
        }
    }
}
