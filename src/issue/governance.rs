//! The credmint governance extension: which integration, which approval and which ledger a
//! certificate was issued under, so an auditor holding only the certificate can find the
//! ledger record that authorised it.
//!
//! ```text
//! id-credmint-governance OBJECT IDENTIFIER ::=
//!     { joint-iso-itu-t(2) uuid(25) 200161243720697351444210605520779894002 }
//!     -- 2.25.<UUID 9695a73e-9636-4ca8-aa4f-53ea1da25cf2 as an integer> (ITU-T X.667)
//!
//! CredmintGovernance ::= SEQUENCE {
//!     integration   UTF8String,  -- registry name of the integration
//!     approvalRef   UTF8String,  -- the approval (ledger event) that granted issuance
//!     ledgerOrigin  UTF8String   -- the ledger's checkpoint origin line
//! }
//! ```
//!
//! The extension is always non-critical: relying parties that do not know it must still
//! accept the certificate. Because the UUID arc does not fit in 64 bits, rcgen cannot
//! write this OID itself; `x509::build_leaf` appends the extension to the to-be-signed
//! bytes before the single signature.

use super::der::{self, OCTET_STRING, OID, SEQUENCE, UTF8_STRING};

/// Dotted form of [`GOVERNANCE_OID`]. Minted once from the random UUID v4
/// `9695a73e-9636-4ca8-aa4f-53ea1da25cf2` under the X.667 arc 2.25, which needs no
/// registration; never change it, certificates in the field carry it.
pub const GOVERNANCE_OID_STR: &str = "2.25.200161243720697351444210605520779894002";

/// Arcs of the governance extension OID.
pub const GOVERNANCE_OID: [u128; 3] = [2, 25, 200_161_243_720_697_351_444_210_605_520_779_894_002];

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

    /// The complete non-critical `Extension` SEQUENCE carrying this record.
    pub(crate) fn extension_der(&self) -> Vec<u8> {
        let oid = der::tlv(OID, &der::oid_content(&GOVERNANCE_OID));
        let value = der::tlv(OCTET_STRING, &self.encode());
        der::tlv(SEQUENCE, &[oid, value].concat())
    }

    /// Finds and decodes the governance extension of a DER certificate. `Ok(None)` when the
    /// certificate has none.
    pub fn parse_from_certificate(der: &[u8]) -> Result<Option<Governance>, GovernanceError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| GovernanceError::Certificate(e.to_string()))?;
        let oid = der::oid_content(&GOVERNANCE_OID);
        let mut found = cert
            .extensions()
            .iter()
            .filter(|ext| ext.oid.as_bytes() == oid.as_slice());
        let Some(ext) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(GovernanceError::Duplicate);
        }
        Governance::decode(ext.value).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Governance {
        Governance {
            integration: "payments-batch".into(),
            approval_ref: "approval/42".into(),
            ledger_origin: "credmint.example/ledger".into(),
        }
    }

    #[test]
    fn oid_constant_matches_its_dotted_form() {
        let dotted = GOVERNANCE_OID
            .iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join(".");
        assert_eq!(dotted, GOVERNANCE_OID_STR);
        // Encoding cross-checked with `openssl asn1parse -genstr OID:2.25.2001...`.
        assert_eq!(
            hex::encode(der::tlv(OID, &der::oid_content(&GOVERNANCE_OID))),
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
