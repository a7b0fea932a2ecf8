//! Certificates a CA rotation creates: the new self-signed root (same subject DN as the old
//! one, new key) and the cross-certificate (new key certified by the old CA key).
//!
//! Naming: every generation keeps the genesis subject DN, as in RFC 4210 4.4 root CA key
//! update (newWithNew = the new root, newWithOld = the cross-certificate). That keeps the
//! cross-certificate self-issued, so clients that still trust only the old root verify new
//! leaves through it without breaking the old root's `pathlen:0`; a per-generation name
//! (e.g. a "G1" suffix) would make the cross-certificate an ordinary intermediate that
//! `pathlen:0` forbids, and would need every genesis root re-issued. Relying parties tell
//! the same-named roots apart by key identifier: each root carries AKI = SKI
//! (`ca::root_params`), leaves, CRLs and the cross-certificate carry the AKI of the key
//! that signed them, and OCSP responses name their signer by key hash. With that, OpenSSL
//! 3.0 verifies leaves, CRLs and OCSP responses of every generation against the bundle in
//! any order. A genesis root from before AKIs were added still works as long as it stays
//! first in the bundle (`ca.pem` is written oldest first).

use rcgen::{CertificateParams, DistinguishedName, DnType, Issuer};
use time::{Duration, OffsetDateTime};

use crate::ca::{CaError, RootCa};
use crate::hsm::HsmKey;

fn ca_params(
    old_root_der: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    // Like the genesis root: leaves only, no further intermediates below this CA.
    Ok(crate::ca::root_params(
        same_dn(old_root_der)?,
        not_before,
        not_after,
    ))
}

fn malformed(reason: impl std::fmt::Display) -> CaError {
    CaError::Malformed {
        path: "ledger CA certificate".into(),
        reason: reason.to_string(),
    }
}

/// The old root's subject as rcgen builds it (UTF8String values, same attribute order).
/// Callers check the result byte for byte against the old subject.
fn same_dn(old_root_der: &[u8]) -> Result<DistinguishedName, CaError> {
    let (_, old) = x509_parser::parse_x509_certificate(old_root_der).map_err(malformed)?;
    let mut dn = DistinguishedName::new();
    for rdn in old.subject().iter() {
        for attr in rdn.iter() {
            let value = attr.as_str().map_err(malformed)?;
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| malformed("DN attribute OID"))?
                .collect();
            let ty = match oid.as_slice() {
                [2, 5, 4, 3] => DnType::CommonName,
                [2, 5, 4, 10] => DnType::OrganizationName,
                [2, 5, 4, 11] => DnType::OrganizationalUnitName,
                [2, 5, 4, 6] => DnType::CountryName,
                [2, 5, 4, 7] => DnType::LocalityName,
                [2, 5, 4, 8] => DnType::StateOrProvinceName,
                _ => DnType::CustomDnType(oid),
            };
            dn.push(ty, value);
        }
    }
    Ok(dn)
}

/// Fails unless `new_der`'s subject equals `old_der`'s byte for byte (the rotation relies
/// on the cross-certificate being self-issued).
fn check_same_subject(old_der: &[u8], new_der: &[u8]) -> Result<(), CaError> {
    let (_, old) = x509_parser::parse_x509_certificate(old_der).map_err(malformed)?;
    let (_, new) = x509_parser::parse_x509_certificate(new_der).map_err(malformed)?;
    if old.subject().as_raw() != new.subject().as_raw() {
        return Err(malformed(
            "the new CA subject does not reproduce the old one byte for byte",
        ));
    }
    Ok(())
}

/// The new generation's self-signed root: the old root's subject DN over `new_key`.
pub fn build_successor_root(
    old_root_der: &[u8],
    new_key: &HsmKey,
    validity_days: u32,
    now: OffsetDateTime,
) -> Result<RootCa, CaError> {
    let params = ca_params(
        old_root_der,
        now - Duration::seconds(60),
        now + Duration::days(i64::from(validity_days)),
    )?;
    let cert = params.self_signed(new_key)?;
    check_same_subject(old_root_der, cert.der())?;
    Ok(RootCa {
        der: cert.der().to_vec(),
        pem: cert.pem(),
    })
}

/// The cross-certificate: subject and issuer are the (shared) CA DN, the key is `new_key`,
/// the signature is the old CA key's. Self-issued, so it does not count against the old
/// root's path length constraint. Valid no longer than the old root.
pub fn build_cross(
    old_root_der: &[u8],
    old_key: &HsmKey,
    new_key: &HsmKey,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaError> {
    let (_, old) = x509_parser::parse_x509_certificate(old_root_der).map_err(malformed)?;
    let old_not_after =
        OffsetDateTime::from_unix_timestamp(old.validity().not_after.timestamp()).unwrap_or(now);
    let mut params = ca_params(old_root_der, now - Duration::seconds(60), old_not_after)?;
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(&old_root_der.to_vec().into(), old_key)?;
    let cert = params.signed_by(new_key, &issuer)?;
    check_same_subject(old_root_der, cert.der())?;
    Ok(cert.der().to_vec())
}
