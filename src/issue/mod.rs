//! Pure X.509 builders for workload credentials: CSR intake, leaf certificates and the
//! governance extension that ties each certificate to the record it was issued under.
//!
//! Everything here is a function of its arguments. Nothing in this module reads the
//! registry, decides policy, touches the ledger or chooses a serial: callers pass those in,
//! so the same code serves the appliance, tests and auditors. The issuer key is only ever
//! asked to sign the final to-be-signed bytes, exactly once per certificate.

pub mod csr;
pub mod governance;
pub mod x509;

pub use csr::{parse_csr, CsrError, LeafKeyKind, ValidCsr, MAX_CSR_BYTES};
pub use governance::{
    Governance, GovernanceError, GOVERNANCE_OID, GOVERNANCE_OID_STR, LEGACY_GOVERNANCE_OID,
    LEGACY_GOVERNANCE_OID_STR,
};
pub use x509::{build_leaf, LeafSpec};

/// Why a leaf certificate could not be built. `InvalidSpec` and `SubjectKey` are the
/// caller's fault (a bug upstream of policy); `Sign` is the key's; `SelfCheck` means the
/// signed certificate did not verify under the CA certificate and was discarded.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("invalid leaf specification: {0}")]
    InvalidSpec(String),
    #[error("subject public key not usable: {0}")]
    SubjectKey(String),
    #[error("CA certificate not usable: {0}")]
    CaCertificate(String),
    #[error("certificate building or signing failed: {0}")]
    Build(#[from] rcgen::Error),
    #[error("signed certificate failed self-verification: {0}")]
    SelfCheck(String),
}

impl LeafError {
    /// Short fixed category for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            LeafError::InvalidSpec(_) => "invalid_spec",
            LeafError::SubjectKey(_) => "subject_key",
            LeafError::CaCertificate(_) => "ca_certificate",
            LeafError::Build(rcgen::Error::RemoteKeyError) => "sign",
            LeafError::Build(_) => "build",
            LeafError::SelfCheck(_) => "self_check",
        }
    }
}

/// Minimal DER: definite lengths only, which is all X.509 allows.
pub(crate) mod der {
    pub const SEQUENCE: u8 = 0x30;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;

    /// Encodes one tag-length-value.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + 6);
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    /// Splits one TLV off `input`: `(tag, content, rest)`. Rejects indefinite and
    /// non-minimal lengths and high tag numbers.
    pub fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None;
            }
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    /// Content octets of an OBJECT IDENTIFIER (first two arcs combined, base-128 arcs).
    pub fn oid_content(arcs: &[u128]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push_arc = |mut v: u128| {
            let mut tmp = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                tmp.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            tmp.reverse();
            out.extend_from_slice(&tmp);
        };
        push_arc(arcs[0] * 40 + arcs[1]);
        for arc in &arcs[2..] {
            push_arc(*arc);
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn long_lengths_round_trip_and_non_minimal_is_rejected() {
            for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
                let enc = tlv(0x04, &vec![7u8; len]);
                let (tag, content, rest) = read_tlv(&enc).unwrap();
                assert_eq!((tag, content.len(), rest.len()), (0x04, len, 0));
            }
            assert!(read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_none());
            assert!(read_tlv(&[0x04, 0x80]).is_none());
            assert!(read_tlv(&[0x04, 0x05, 1]).is_none());
        }

        #[test]
        fn oid_encoding_matches_known_values() {
            // id-pe-authorityInfoAccess 1.3.6.1.5.5.7.1.1
            assert_eq!(
                oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1]),
                [0x2b, 6, 1, 5, 5, 7, 1, 1]
            );
            // X.667's example 2.25.329800735698586629295641978511506172918;
            // expected bytes from `openssl asn1parse -genstr OID:...`.
            assert_eq!(
                hex::encode(oid_content(&[
                    2,
                    25,
                    329800735698586629295641978511506172918
                ])),
                "6983f09da7ebcfdee0c7a1a7b2c0948cc8f9d776"
            );
        }
    }
}
