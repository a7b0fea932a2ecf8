//! Workload leaf certificates (X.509-SVIDs) from a checked spec and a subject key.
//!
//! rcgen lays out the whole certificate, the governance extension included (a custom
//! extension: its OID has ordinary arcs), the CA key signs the to-be-signed bytes once, and
//! the result is verified against the CA certificate before it is returned.

use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType, SerialNumber, SigningKey,
};
use time::OffsetDateTime;

use super::der::{self, SEQUENCE};
use super::governance::Governance;
use super::LeafError;

/// id-pe-authorityInfoAccess (RFC 5280 4.2.2.1).
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-ocsp 1.3.6.1.5.5.7.48.1, content octets.
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
/// RFC 5280 ub-common-name: longer SPIFFE IDs leave the subject empty.
const MAX_CN_LEN: usize = 64;

/// Everything a leaf says, decided upstream (policy, serial allocator, clock).
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Positive (top bit clear), not all zero; at least 64 random bits.
    pub serial: [u8; 16],
    /// The single URI SAN, e.g. `spiffe://prod.example/payments/batch`.
    pub spiffe_id: String,
    pub dns_names: Vec<String>,
    /// Subject commonName; `None`: the SPIFFE ID (when it fits). ACME certificates name
    /// their first DNS name, because ACME clients read the CN back as a domain to renew.
    pub common_name: Option<String>,
    /// Inclusive at both ends (RFC 5280 4.1.2.5).
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub client_auth: bool,
    pub server_auth: bool,
    /// Placed in authorityInfoAccess as id-ad-ocsp.
    pub ocsp_url: String,
    /// Placed in cRLDistributionPoints; must equal the CRL's issuing distribution point.
    pub crl_url: String,
    pub governance: Governance,
}

/// Builds and signs a leaf for `subject_spki_der` (Ed25519, P-256 or RSA), issued by the
/// CA certificate `ca_cert_der` whose private key is `ca_key`. Calls `ca_key.sign` once.
pub fn build_leaf<S: SigningKey>(
    spec: &LeafSpec,
    subject_spki_der: &[u8],
    ca_cert_der: &[u8],
    ca_key: &S,
) -> Result<Vec<u8>, LeafError> {
    let params = leaf_params(spec)?;
    let subject = rcgen::SubjectPublicKeyInfo::from_der(subject_spki_der)
        .map_err(|e| LeafError::SubjectKey(e.to_string()))?;

    let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), ca_key)
        .map_err(|e| LeafError::CaCertificate(e.to_string()))?;
    let cert = params.signed_by(&subject, &issuer)?.der().to_vec();
    self_check(&cert, ca_cert_der)?;
    Ok(cert)
}

fn leaf_params(spec: &LeafSpec) -> Result<CertificateParams, LeafError> {
    check_spec(spec)?;
    let invalid = |what: &str| LeafError::InvalidSpec(format!("{what} is not an IA5 string"));
    let mut params = CertificateParams::default();
    params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
    let mut dn = DistinguishedName::new();
    match &spec.common_name {
        Some(cn) => dn.push(DnType::CommonName, cn.as_str()),
        None if spec.spiffe_id.len() <= MAX_CN_LEN => {
            dn.push(DnType::CommonName, spec.spiffe_id.as_str())
        }
        None => {}
    }
    // With an empty subject rcgen marks subjectAltName critical (RFC 5280 4.1.2.6).
    params.distinguished_name = dn;
    params.subject_alt_names.push(SanType::URI(
        Ia5String::try_from(spec.spiffe_id.as_str()).map_err(|_| invalid("SPIFFE ID"))?,
    ));
    for name in &spec.dns_names {
        let name = Ia5String::try_from(name.as_str()).map_err(|_| invalid("DNS name"))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.not_before = spec.not_before;
    params.not_after = spec.not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.client_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if spec.server_auth {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![spec.crl_url.clone()],
    }];
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID_AIA,
            aia_ocsp(&spec.ocsp_url),
        ));
    params.custom_extensions.push(spec.governance.extension());
    Ok(params)
}

fn check_spec(spec: &LeafSpec) -> Result<(), LeafError> {
    let fail = |why: String| Err(LeafError::InvalidSpec(why));
    if spec.serial[0] & 0x80 != 0 || spec.serial.iter().all(|b| *b == 0) {
        return fail("serial must be positive and non-zero".into());
    }
    if spec.not_before >= spec.not_after {
        return fail("not_before must be before not_after".into());
    }
    if !spec.client_auth && !spec.server_auth {
        return fail("a leaf needs clientAuth or serverAuth".into());
    }
    check_spiffe_id(&spec.spiffe_id).map_err(LeafError::InvalidSpec)?;
    if spec.dns_names.iter().any(|n| n.is_empty()) {
        return fail("empty DNS name".into());
    }
    for (what, url) in [("ocsp_url", &spec.ocsp_url), ("crl_url", &spec.crl_url)] {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return fail(format!("{what} must be an absolute http(s) URL"));
        }
    }
    Ok(())
}

/// SPIFFE ID syntax (SPIFFE-ID spec 2.1, 2.2): lowercase trust domain, non-empty path of
/// non-empty segments other than `.`/`..`, no query, fragment, port or userinfo.
fn check_spiffe_id(id: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("SPIFFE ID {why}"));
    if id.len() > 2048 {
        return bad("is longer than 2048 bytes");
    }
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return bad("must start with spiffe://");
    };
    let (td, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let td_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b);
    if td.is_empty() || !td.bytes().all(td_ok) {
        return bad("trust domain must be non-empty [a-z0-9.-_]");
    }
    let seg_ok = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    if path.is_empty() {
        return bad("must have a workload path");
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || !seg.bytes().all(seg_ok) {
            return bad("path segments must be non-empty [A-Za-z0-9.-_], not . or ..");
        }
    }
    Ok(())
}

/// AuthorityInfoAccessSyntax with one id-ad-ocsp uniformResourceIdentifier.
fn aia_ocsp(url: &str) -> Vec<u8> {
    let access = [
        der::tlv(der::OID, OID_AD_OCSP),
        der::tlv(0x86, url.as_bytes()),
    ]
    .concat();
    der::tlv(SEQUENCE, &der::tlv(SEQUENCE, &access))
}

/// Parses the finished certificate and verifies it under the CA certificate's key, so a
/// faulty signer or a CA certificate that does not match the key is caught here.
fn self_check(cert: &[u8], ca_cert_der: &[u8]) -> Result<(), LeafError> {
    let fail = |e: String| LeafError::SelfCheck(e);
    let (_, ca) = x509_parser::parse_x509_certificate(ca_cert_der)
        .map_err(|e| LeafError::CaCertificate(e.to_string()))?;
    let (rest, leaf) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes".into()));
    }
    leaf.verify_signature(Some(ca.public_key())).map_err(|e| {
        fail(format!(
            "signature does not verify under the CA certificate: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, KeyPair, PublicKeyData, SignatureAlgorithm};
    use std::cell::Cell;
    use time::Duration;

    /// Counts signatures so the "signs exactly once" promise is tested.
    struct Counting {
        inner: KeyPair,
        calls: Cell<usize>,
    }
    impl PublicKeyData for Counting {
        fn der_bytes(&self) -> &[u8] {
            self.inner.der_bytes()
        }
        fn algorithm(&self) -> &'static SignatureAlgorithm {
            self.inner.algorithm()
        }
    }
    impl SigningKey for Counting {
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            self.calls.set(self.calls.get() + 1);
            self.inner.sign(msg)
        }
    }

    fn ca(alg: &'static SignatureAlgorithm) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (params.self_signed(&key).unwrap().der().to_vec(), key)
    }

    fn spec() -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            serial: [0x11; 16],
            spiffe_id: "spiffe://td.example/ns/payments".into(),
            dns_names: vec!["a.example".into()],
            common_name: None,
            not_before: now,
            not_after: now + Duration::hours(1),
            client_auth: true,
            server_auth: false,
            ocsp_url: "http://ca.example/ocsp".into(),
            crl_url: "http://ca.example/crl".into(),
            governance: Governance {
                integration: "payments".into(),
                approval_ref: "ap-1".into(),
                ledger_origin: "credmint.example/ledger".into(),
            },
        }
    }

    fn subject() -> Vec<u8> {
        KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .unwrap()
            .subject_public_key_info()
    }

    #[test]
    fn signs_once_and_verifies_under_ed25519_and_p256_cas() {
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let (ca_der, key) = ca(alg);
            let counting = Counting {
                inner: key,
                calls: Cell::new(0),
            };
            let der = build_leaf(&spec(), &subject(), &ca_der, &counting).unwrap();
            assert_eq!(counting.calls.get(), 1);
            let g = Governance::parse_from_certificate(&der).unwrap().unwrap();
            assert_eq!(g, spec().governance);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert_eq!(cert.raw_serial(), &[0x11; 16]);
            assert_eq!(cert.signature_algorithm, cert.tbs_certificate.signature);
        }
    }

    #[test]
    fn mismatched_ca_key_fails_self_check() {
        let (ca_der, _) = ca(&rcgen::PKCS_ED25519);
        let (_, other) = ca(&rcgen::PKCS_ED25519);
        let err = build_leaf(&spec(), &subject(), &ca_der, &other).unwrap_err();
        assert!(matches!(err, LeafError::SelfCheck(_)), "{err}");
    }

    #[test]
    fn long_spiffe_id_gets_empty_subject_and_critical_san() {
        let (ca_der, key) = ca(&rcgen::PKCS_ED25519);
        let mut s = spec();
        s.spiffe_id = format!("spiffe://td.example/{}", "x".repeat(100));
        let der = build_leaf(&s, &subject(), &ca_der, &key).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(cert.subject().iter().next().is_none());
        assert!(cert.subject_alternative_name().unwrap().unwrap().critical);
    }

    #[test]
    fn invalid_specs_are_refused_before_signing() {
        let (ca_der, key) = ca(&rcgen::PKCS_ED25519);
        let cases: Vec<fn(&mut LeafSpec)> = vec![
            |s| s.serial[0] = 0x80,
            |s| s.serial = [0; 16],
            |s| s.not_after = s.not_before,
            |s| s.client_auth = false,
            |s| s.spiffe_id = "spiffe://TD.example/x".into(),
            |s| s.spiffe_id = "spiffe://td.example".into(),
            |s| s.spiffe_id = "spiffe://td.example/a//b".into(),
            |s| s.spiffe_id = "spiffe://td.example/a?q=1".into(),
            |s| s.spiffe_id = "https://td.example/a".into(),
            |s| s.dns_names = vec!["é.example".into()],
            |s| s.ocsp_url = "ftp://x".into(),
            |s| s.crl_url = "http://a b".into(),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut s = spec();
            mutate(&mut s);
            let err = build_leaf(&s, &subject(), &ca_der, &key).unwrap_err();
            assert!(matches!(err, LeafError::InvalidSpec(_)), "case {i}: {err}");
        }
    }

    #[test]
    fn garbage_subject_key_is_refused() {
        let (ca_der, key) = ca(&rcgen::PKCS_ED25519);
        let err = build_leaf(&spec(), b"\x30\x00", &ca_der, &key).unwrap_err();
        assert!(matches!(err, LeafError::SubjectKey(_)), "{err}");
    }

    #[test]
    fn aia_encoding_matches_openssl() {
        // `openssl asn1parse -genconf` of SEQUENCE{SEQUENCE{OID:OCSP, IMP:6,IA5:http://o}}
        assert_eq!(
            hex::encode(aia_ocsp("http://o")),
            "3016301406082b060105050730018608687474703a2f2f6f"
        );
    }
}
