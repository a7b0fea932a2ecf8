//! The self-signed root CA certificate over the HSM CA key.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::serial::random_serial;
use super::CaError;
use crate::hsm::HsmKey;

/// The CA certificate as files and relying parties see it.
#[derive(Debug, Clone)]
pub struct RootCa {
    pub der: Vec<u8>,
    pub pem: String,
}

/// Parameters every credmint root shares. `pathlen 0`: credmint issues leaves directly,
/// never intermediates, so a leaked leaf can never mint further certificates.
///
/// Roots carry an authorityKeyIdentifier equal to their subjectKeyIdentifier. Every CA
/// generation keeps the same subject name (see `rotation::build`), so after a rotation the
/// published bundle holds self-signed roots with one name; the key identifiers are what
/// tell them apart (RFC 5280 4.2.1.1: AKI is for issuers with several keys, "due to
/// changeover"). OpenSSL picks a trust anchor for a self-signed certificate by name and
/// AKI: without the AKI it may pick the other generation's root and report the OCSP
/// signer (the root itself) as an untrusted "self-signed certificate".
pub fn root_params(
    dn: DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = not_before;
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    params
}

/// Builds and self-signs the genesis root.
pub fn build_root(
    key: &HsmKey,
    common_name: &str,
    validity_days: u32,
    now: OffsetDateTime,
) -> Result<RootCa, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "credmint");
    let params = root_params(
        dn,
        now - Duration::seconds(60),
        now + Duration::days(i64::from(validity_days)),
    );
    let cert = params.self_signed(key)?;
    Ok(RootCa {
        der: cert.der().to_vec(),
        pem: cert.pem(),
    })
}

/// Reads `ca.pem` and checks it certifies the HSM CA key (a swapped file is refused).
/// After a CA rotation `ca.pem` is a bundle of every root in use: the certificate of `key`
/// is picked from it.
pub fn load_root(path: &Path, key: &HsmKey) -> Result<RootCa, CaError> {
    let pem = std::fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |reason: String| CaError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let spki = key.public_key().spki_der();
    let mut first_error = None;
    let mut count = 0;
    for parsed in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let parsed = parsed.map_err(|e| malformed(e.to_string()))?;
        let der = parsed.contents;
        let (_, cert) = match x509_parser::parse_x509_certificate(&der) {
            Ok(c) => c,
            Err(e) => {
                first_error.get_or_insert(e.to_string());
                continue;
            }
        };
        count += 1;
        if cert.public_key().raw == spki.as_slice() {
            let pem = if pem.matches("-----BEGIN CERTIFICATE-----").count() == 1 {
                pem.clone()
            } else {
                crate::issuance::pem_encode("CERTIFICATE", &der)
            };
            return Ok(RootCa { der, pem });
        }
    }
    if count == 0 {
        return Err(malformed(
            first_error.unwrap_or_else(|| "no certificate".into()),
        ));
    }
    Err(CaError::KeyMismatch {
        path: path.to_owned(),
    })
}
