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

/// Builds and self-signs the root. `pathlen 0`: credmint issues leaves directly, never
/// intermediates, so a leaked leaf can never mint further certificates.
pub fn build_root(
    key: &HsmKey,
    common_name: &str,
    validity_days: u32,
    now: OffsetDateTime,
) -> Result<RootCa, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "credmint");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = now - Duration::seconds(60);
    params.not_after = now + Duration::days(i64::from(validity_days));
    let cert = params.self_signed(key)?;
    Ok(RootCa {
        der: cert.der().to_vec(),
        pem: cert.pem(),
    })
}

/// Reads `ca.pem` and checks it certifies the HSM CA key (a swapped file is refused).
pub fn load_root(path: &Path, key: &HsmKey) -> Result<RootCa, CaError> {
    let pem = std::fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |reason: String| CaError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| malformed(e.to_string()))?;
    let der = parsed.contents;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| malformed(e.to_string()))?;
    if cert.public_key().raw != key.public_key().spki_der().as_slice() {
        return Err(CaError::KeyMismatch {
            path: path.to_owned(),
        });
    }
    Ok(RootCa { der, pem })
}
