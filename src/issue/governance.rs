//! The credmint governance extension: which integration, which approval and which ledger a
//! certificate was issued under, so an auditor holding only the certificate can find the
//! ledger record that authorised it.
//!
//! ```text
//! id-credmint-governance OBJECT IDENTIFIER ::=
//!     { iso(1) identified-organization(3) dod(6) internet(1) private(4) enterprise(1)
//!       32473 credmint(1) governance(1) }            -- 1.3.6.1.4.1.32473.1.1
//!
//! CredmintGovernance ::= SEQUENCE {
//!     integration   UTF8String,  -- registry name of the integration
//!     approvalRef   UTF8String,  -- the approval (ledger event) that granted issuance
//!     ledgerOrigin  UTF8String   -- the ledger's checkpoint origin line
//! }
//! ```
//!
//! Every arc fits in 31 bits, so Go's crypto/x509, pkilint and ASN.1 libraries that store
//! arcs as 32-bit integers parse the certificates. 32473 is the Private Enterprise Number
//! IANA reserves for documentation (RFC 5612): a real deployment must mint the OID under
//! its own IANA-registered PEN (change [`GOVERNANCE_OID`] before the first issuance).
//!
//! Certificates issued before this OID was adopted carry the same value under
//! [`LEGACY_GOVERNANCE_OID_STR`] (`2.25.<UUID as integer>`, whose 128-bit arc Go refuses);
//! [`Governance::parse_from_certificate`] reads both, nothing writes the old one.
//!
//! The extension is always non-critical: relying parties that do not know it must still
//! accept the certificate.

use super::der::{self, SEQUENCE, UTF8_STRING};

/// Dotted form of [`GOVERNANCE_OID`].
pub const GOVERNANCE_OID_STR: &str = "1.3.6.1.4.1.32473.1.1";

/// Arcs of the governance extension OID (what rcgen writes).
pub const GOVERNANCE_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 32473, 1, 1];

/// Dotted form of the OID the first releases wrote, minted from the random UUID v4
/// `9695a73e-9636-4ca8-aa4f-53ea1da25cf2` under the X.667 arc 2.25. Read, never written.
pub const LEGACY_GOVERNANCE_OID_STR: &str = "2.25.200161243720697351444210605520779894002";

/// Arcs of [`LEGACY_GOVERNANCE_OID_STR`] (the last one needs 128 bits).
pub const LEGACY_GOVERNANCE_OID: [u128; 3] =
    [2, 25, 200_161_243_720_697_351_444_210_605_520_779_894_002];

/// The governance record a certificate was issued under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Governance {
    pub integration: String,
    pub approval_ref: String,
    pub ledger_origin: String,
}

/// A governance extension that is present but not a well-formed `CredmintGovernance`, or
/// a certificate that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    #[error("governance extension appears more than once")]
    Duplicate,
    #[error("governance extension is malformed: {0}")]
    Malformed(&'static str),
}

impl Governance {
    /// DER of the `CredmintGovernance` SEQUENCE (the extnValue contents).
    pub fn encode(&self) -> Vec<u8> {
        let fields = [&self.integration, &self.approval_ref, &self.ledger_origin]
            .iter()
            .flat_map(|s| der::tlv(UTF8_STRING, s.as_bytes()))
            .collect::<Vec<u8>>();
        der::tlv(SEQUENCE, &fields)
    }

    /// Strict inverse of [`Governance::encode`]: exactly three UTF8Strings, nothing after.
    pub fn decode(value: &[u8]) -> Result<Governance, GovernanceError> {
        let malformed = GovernanceError::Malformed;
        let (tag, mut body, rest) = der::read_tlv(value).ok_or(malformed("bad DER"))?;
        if tag != SEQUENCE || !rest.is_empty() {
            return Err(malformed("not a single SEQUENCE"));
        }
        let mut fields = Vec::with_capacity(3);
        while !body.is_empty() {
            let (tag, content, rest) = der::read_tlv(body).ok_or(malformed("bad DER"))?;
            if tag != UTF8_STRING {
                return Err(malformed("field is not a UTF8String"));
            }
            let s = std::str::from_utf8(content).map_err(|_| malformed("invalid UTF-8"))?;
            fields.push(s.to_owned());
            body = rest;
        }
        let [integration, approval_ref, ledger_origin]: [String; 3] = fields
            .try_into()
            .map_err(|_| malformed("expected exactly three fields"))?;
        Ok(Governance {
            integration,
            approval_ref,
            ledger_origin,
        })
    }

    /// The non-critical rcgen extension carrying this record.
    pub(crate) fn extension(&self) -> rcgen::CustomExtension {
        // from_oid_content: non-critical, `content` becomes the extnValue OCTET STRING.
        rcgen::CustomExtension::from_oid_content(&GOVERNANCE_OID, self.encode())
    }

    /// Finds and decodes the governance extension of a DER certificate, under the current
    /// or the legacy OID. `Ok(None)` when the certificate has none; more than one (under
    /// either OID) is [`GovernanceError::Duplicate`].
    pub fn parse_from_certificate(der: &[u8]) -> Result<Option<Governance>, GovernanceError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| GovernanceError::Certificate(e.to_string()))?;
        let current = oid_content_u64(&GOVERNANCE_OID);
        let legacy = der::oid_content(&LEGACY_GOVERNANCE_OID);
        let mut found = cert.extensions().iter().filter(|ext| {
            let bytes = ext.oid.as_bytes();
            bytes == current.as_slice() || bytes == legacy.as_slice()
        });
        let Some(ext) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(GovernanceError::Duplicate);
        }
        Governance::decode(ext.value).map(Some)
    }
}

/// Content octets of an OID given as 64-bit arcs.
fn oid_content_u64(arcs: &[u64]) -> Vec<u8> {
    der::oid_content(&arcs.iter().map(|a| u128::from(*a)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::der::OID;
    use super::*;

    fn sample() -> Governance {
        Governance {
            integration: "payments-batch".into(),
            approval_ref: "approval/42".into(),
            ledger_origin: "credmint.example/ledger".into(),
        }
    }

    fn dotted<T: ToString>(arcs: &[T]) -> String {
        arcs.iter().map(T::to_string).collect::<Vec<_>>().join(".")
    }

    #[test]
    fn oid_constants_match_their_dotted_forms_and_every_arc_fits_31_bits() {
        assert_eq!(dotted(&GOVERNANCE_OID), GOVERNANCE_OID_STR);
        assert!(GOVERNANCE_OID.iter().all(|a| *a < 1 << 31));
        // Encodings cross-checked with `openssl asn1parse -genstr OID:<dotted>`.
        assert_eq!(
            hex::encode(der::tlv(OID, &oid_content_u64(&GOVERNANCE_OID))),
            "060a2b0601040181fd590101"
        );
        assert_eq!(dotted(&LEGACY_GOVERNANCE_OID), LEGACY_GOVERNANCE_OID_STR);
        assert_eq!(
            hex::encode(der::tlv(OID, &der::oid_content(&LEGACY_GOVERNANCE_OID))),
            "06146982ad95d3cfd2e3b2b2d1aaa7d4fda1ed89b972"
        );
    }

    #[test]
    fn encode_is_the_documented_sequence_and_round_trips() {
        let g = Governance {
            integration: "a".into(),
            approval_ref: "bc".into(),
            ledger_origin: "".into(),
        };
        assert_eq!(hex::encode(g.encode()), "30090c01610c0262630c00");
        assert_eq!(Governance::decode(&g.encode()).unwrap(), g);
        let long = Governance {
            integration: "é".repeat(200),
            ..sample()
        };
        assert_eq!(Governance::decode(&long.encode()).unwrap(), long);
    }

    #[test]
    fn decode_rejects_every_truncation_and_extra_or_wrong_fields() {
        let enc = sample().encode();
        for cut in 0..enc.len() {
            assert!(Governance::decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = enc.clone();
        trailing.push(0);
        assert!(Governance::decode(&trailing).is_err());
        let two = der::tlv(
            SEQUENCE,
            &[der::tlv(UTF8_STRING, b"a"), der::tlv(UTF8_STRING, b"b")].concat(),
        );
        assert!(Governance::decode(&two).is_err());
        let ia5 = der::tlv(
            SEQUENCE,
            &[
                der::tlv(0x16, b"a"),
                der::tlv(UTF8_STRING, b"b"),
                der::tlv(UTF8_STRING, b"c"),
            ]
            .concat(),
        );
        assert!(Governance::decode(&ia5).is_err());
        let bad_utf8 = der::tlv(
            SEQUENCE,
            &[
                der::tlv(UTF8_STRING, &[0xff]),
                der::tlv(UTF8_STRING, b"b"),
                der::tlv(UTF8_STRING, b"c"),
            ]
            .concat(),
        );
        assert!(Governance::decode(&bad_utf8).is_err());
    }

    #[test]
    fn parse_from_certificate_rejects_garbage() {
        assert!(Governance::parse_from_certificate(b"not a certificate").is_err());
    }
}
