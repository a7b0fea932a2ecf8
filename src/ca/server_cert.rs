//! The appliance's own HTTPS certificate, issued by the HSM CA key on first start.
//!
//! The TLS key is an ordinary file (mode 0600) rather than a token object: it only
//! authenticates this listener, it signs no credential, and TLS handshakes must not spend
//! the HSM's signing budget. It is re-issued when missing, expiring within 7 days, not
//! issued by the current CA, or when `server.names` changed.

use std::io::Write;
use std::path::Path;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::serial::random_serial;
use super::{CaError, RootCa};
use crate::hsm::HsmKey;

/// PEM certificate chain and private key of the listener.
pub struct ServerCert {
    pub chain_pem: String,
    pub key_pem: String,
    /// True when this call issued a new certificate.
    pub issued: bool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Returns the current server certificate, issuing a new one when needed.
pub fn ensure_server_cert(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
    validity_days: u32,
    ca: &RootCa,
    ca_key: &HsmKey,
    now: OffsetDateTime,
) -> Result<ServerCert, CaError> {
    if let (Ok(chain_pem), Ok(key_pem)) = (
        std::fs::read_to_string(cert_path),
        std::fs::read_to_string(key_path),
    ) {
        if still_valid(&chain_pem, names, ca, now) {
            return Ok(ServerCert {
                chain_pem,
                key_pem,
                issued: false,
            });
        }
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].as_str());
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.not_before = now - Duration::seconds(60);
    params.not_after = now + Duration::days(i64::from(validity_days));
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(&ca.der.clone().into(), ca_key)?;
    let cert = params.signed_by(&key, &issuer)?;
    let chain_pem = format!("{}{}", cert.pem(), ca.pem);
    let key_pem = key.serialize_pem();
    write_private(key_path, key_pem.as_bytes())?;
    std::fs::write(cert_path, &chain_pem).map_err(io_err(cert_path))?;
    Ok(ServerCert {
        chain_pem,
        key_pem,
        issued: true,
    })
}

fn still_valid(chain_pem: &str, names: &[String], ca: &RootCa, now: OffsetDateTime) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&pem.contents) else {
        return false;
    };
    let Ok((_, ca_cert)) = x509_parser::parse_x509_certificate(&ca.der) else {
        return false;
    };
    if cert.issuer() != ca_cert.subject()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return false;
    }
    let expires = cert.validity().not_after.timestamp();
    if expires < (now + Duration::days(7)).unix_timestamp() {
        return false;
    }
    let mut present: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(ip) => ip_to_string(ip),
                other => format!("{other:?}"),
            })
            .collect(),
        _ => return false,
    };
    let mut wanted = names.to_vec();
    present.sort();
    wanted.sort();
    present == wanted
}

fn ip_to_string(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => hex::encode(bytes),
    }
}

/// Writes a private key file with mode 0600 from the start (no window where it is 0644).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}
