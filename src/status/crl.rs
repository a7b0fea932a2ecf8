//! CRL building (RFC 5280 section 5), signed by the CA key through rcgen.
//!
//! Every CRL is v2 and carries: signature algorithm of the CA key (ecdsa-with-SHA256 or
//! Ed25519, no parameters, inner and outer equal), issuer = the CA subject (checked byte for
//! byte against the CA certificate), thisUpdate/nextUpdate (UTCTime before 2050),
//! a CRL number, an authority key identifier equal to the CA's subjectKeyIdentifier, and a
//! critical issuing distribution point whose distributionPoint fullName is exactly the one
//! `crl_url` URI. That URI must be the same string the leaves carry in their
//! cRLDistributionPoints: openssl only accepts a CRL with an IDP for a certificate whose CRL
//! DP matches it (tests/status_builders.rs checks both sides with `openssl verify
//! -crl_check`). Entries carry a reasonCode only for reasons other than unspecified (0).
//!
//! The result is re-parsed and its signature verified against the CA certificate before it is
//! returned. Serve it as `application/pkix-crl`.

use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, Issuer,
    KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// Serial as unsigned big-endian bytes (the DER INTEGER contents with or without the
    /// leading 0x00 give the same entry). 1..=20 encoded octets, non-zero.
    pub serial: Vec<u8>,
    /// Revocation time, unix seconds.
    pub revoked_at: u64,
    /// CRLReason code; `None` and `Some(0)` (unspecified) omit the reasonCode extension.
    pub reason: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("CA certificate unusable for CRLs: {0}")]
    BadCaCert(String),
    #[error("the signing key is not the CA certificate's key")]
    KeyMismatch,
    #[error("CRL URL {0:?} must be a non-empty ASCII URI without spaces or controls")]
    BadUrl(String),
    #[error("invalid serial {0}")]
    BadSerial(String),
    #[error("serial {0} listed twice")]
    DuplicateSerial(String),
    #[error("invalid CRLReason code {0}")]
    InvalidReason(u8),
    #[error("time {0} (unix seconds) out of range")]
    BadTime(u64),
    #[error("nextUpdate must be after thisUpdate")]
    BadWindow,
    #[error("rcgen: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("built CRL failed its self-check: {0}")]
    SelfCheck(String),
}

fn reason(code: Option<u8>) -> Result<Option<RevocationReason>, CrlError> {
    Ok(Some(match code {
        None | Some(0) => return Ok(None),
        Some(1) => RevocationReason::KeyCompromise,
        Some(2) => RevocationReason::CaCompromise,
        Some(3) => RevocationReason::AffiliationChanged,
        Some(4) => RevocationReason::Superseded,
        Some(5) => RevocationReason::CessationOfOperation,
        Some(6) => RevocationReason::CertificateHold,
        Some(8) => RevocationReason::RemoveFromCrl,
        Some(9) => RevocationReason::PrivilegeWithdrawn,
        Some(10) => RevocationReason::AaCompromise,
        Some(other) => return Err(CrlError::InvalidReason(other)),
    }))
}

fn time(unix: u64) -> Result<OffsetDateTime, CrlError> {
    i64::try_from(unix)
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(CrlError::BadTime(unix))
}

/// Unsigned magnitude without leading zeros; rejects zero and > 20 encoded octets.
fn canonical_serial(serial: &[u8]) -> Result<Vec<u8>, CrlError> {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    let mag = &serial[start..];
    let encoded_len = mag.len() + usize::from(mag.first().is_some_and(|b| b & 0x80 != 0));
    if mag.is_empty() || encoded_len > 20 {
        return Err(CrlError::BadSerial(hex::encode(serial)));
    }
    Ok(mag.to_vec())
}

fn check_url(url: &str) -> Result<(), CrlError> {
    if url.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CrlError::BadUrl(url.into()));
    }
    Ok(())
}

/// Builds and signs a CRL (DER). `ca_key` must be the key of `ca_der` (checked).
pub fn build_crl<S: SigningKey>(
    ca_der: &[u8],
    ca_key: &S,
    crl_url: &str,
    entries: &[CrlEntry],
    this_update: u64,
    next_update: u64,
    crl_number: u64,
) -> Result<Vec<u8>, CrlError> {
    let bad = |m: String| CrlError::BadCaCert(m);
    let (rest, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate".into()));
    }
    if ca.public_key().raw != ca_key.subject_public_key_info().as_slice() {
        return Err(CrlError::KeyMismatch);
    }
    let ski = ca
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .ok_or_else(|| bad("no subjectKeyIdentifier (needed for the CRL's AKI)".into()))?;
    check_url(crl_url)?;
    if next_update <= this_update {
        return Err(CrlError::BadWindow);
    }

    let mut seen = std::collections::HashSet::new();
    let mut revoked_certs = Vec::with_capacity(entries.len());
    for e in entries {
        let serial = canonical_serial(&e.serial)?;
        if !seen.insert(serial.clone()) {
            return Err(CrlError::DuplicateSerial(hex::encode(&serial)));
        }
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: time(e.revoked_at)?,
            reason_code: reason(e.reason)?,
            invalidity_date: None,
        });
    }

    let params = CertificateRevocationListParams {
        this_update: time(this_update)?,
        next_update: time(next_update)?,
        crl_number: SerialNumber::from(crl_number),
        issuing_distribution_point: Some(CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec![crl_url.to_owned()],
            },
            scope: None,
        }),
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(ski),
    };
    let issuer = Issuer::from_ca_cert_der(&ca_der.into(), ca_key)?;
    let crl = params.signed_by(&issuer)?;
    let der = crl.der().to_vec();

    // Self-check: issuer bytes identical to the CA subject (rcgen re-encodes the name), and
    // the signature verifies under the CA key.
    let check = |m: String| CrlError::SelfCheck(m);
    let (_, parsed) =
        x509_parser::parse_x509_crl(&der).map_err(|e| check(format!("re-parse: {e}")))?;
    if parsed.tbs_cert_list.issuer.as_raw() != ca.tbs_certificate.subject.as_raw() {
        return Err(check(
            "issuer name is not byte-identical to the CA subject".into(),
        ));
    }
    parsed
        .verify_signature(ca.public_key())
        .map_err(|e| check(format!("signature: {e}")))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

    fn ca(usages: Vec<KeyUsagePurpose>) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "unit CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "credmint");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = usages;
        (params.self_signed(&key).unwrap().der().to_vec(), key)
    }

    const URL: &str = "http://127.0.0.1:1/crl";

    fn entry(serial: &[u8], reason: Option<u8>) -> CrlEntry {
        CrlEntry {
            serial: serial.to_vec(),
            revoked_at: 1_700_000_000,
            reason,
        }
    }

    #[test]
    fn fields_round_trip_through_x509_parser() {
        let (ca_der, key) = ca(vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]);
        let entries = [entry(&[0x81; 16], Some(1)), entry(&[0, 0x22, 3], Some(0))];
        let der = build_crl(
            &ca_der,
            &key,
            URL,
            &entries,
            1_700_000_100,
            1_700_086_500,
            42,
        )
        .unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        assert_eq!(crl.version().map(|v| v.0), Some(1));
        assert_eq!(crl.crl_number().unwrap().to_string(), "42");
        assert_eq!(crl.next_update().unwrap().timestamp(), 1_700_086_500);
        let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
        assert_eq!(revoked.len(), 2);
        assert_eq!(revoked[0].raw_serial(), [&[0u8][..], &[0x81; 16]].concat());
        assert_eq!(revoked[0].reason_code().map(|r| r.1 .0), Some(1));
        assert_eq!(revoked[1].raw_serial(), &[0x22, 3]);
        assert!(revoked[1].reason_code().is_none(), "unspecified omitted");
        let exts = crl.extensions();
        assert!(exts.iter().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )));
        let idp = exts
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.28")
            .expect("IDP present");
        assert!(idp.critical);
        assert!(idp.value.windows(URL.len()).any(|w| w == URL.as_bytes()));
    }

    #[test]
    fn refuses_bad_inputs() {
        let (ca_der, key) = ca(vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]);
        let go = |entries: &[CrlEntry], url: &str, tu: u64, nu: u64| {
            build_crl(&ca_der, &key, url, entries, tu, nu, 1)
        };
        assert!(go(&[], URL, 10, 20).is_ok(), "an empty CRL is fine");
        assert!(matches!(go(&[], URL, 20, 20), Err(CrlError::BadWindow)));
        assert!(matches!(go(&[], "", 10, 20), Err(CrlError::BadUrl(_))));
        assert!(matches!(
            go(&[], "http://a b", 10, 20),
            Err(CrlError::BadUrl(_))
        ));
        assert!(matches!(
            go(&[], "http://é", 10, 20),
            Err(CrlError::BadUrl(_))
        ));
        assert!(matches!(
            go(&[entry(&[0, 0], None)], URL, 10, 20),
            Err(CrlError::BadSerial(_))
        ));
        assert!(matches!(
            go(&[entry(&[0x80; 20], None)], URL, 10, 20),
            Err(CrlError::BadSerial(_))
        ));
        assert!(go(&[entry(&[0x7f; 20], None)], URL, 10, 20).is_ok());
        assert!(matches!(
            go(
                &[entry(&[1, 2], None), entry(&[0, 1, 2], Some(1))],
                URL,
                10,
                20
            ),
            Err(CrlError::DuplicateSerial(_))
        ));
        assert!(matches!(
            go(&[entry(&[1], Some(7))], URL, 10, 20),
            Err(CrlError::InvalidReason(7))
        ));
        assert!(matches!(
            go(&[], URL, 10, u64::MAX),
            Err(CrlError::BadTime(_))
        ));

        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(matches!(
            build_crl(&ca_der, &other, URL, &[], 10, 20, 1),
            Err(CrlError::KeyMismatch)
        ));
        let (no_crl_sign, key2) = ca(vec![KeyUsagePurpose::KeyCertSign]);
        assert!(matches!(
            build_crl(&no_crl_sign, &key2, URL, &[], 10, 20, 1),
            Err(CrlError::Rcgen(rcgen::Error::IssuerNotCrlSigner))
        ));
    }
}
