//! Intermediate CA mode: a CSR for the HSM-held CA key, and the checks an imported CA
//! certificate (signed by an enterprise, usually offline, root) must pass before the
//! appliance signs anything under it.

use rcgen::{CertificateParams, DistinguishedName, DnType};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::hsm::HsmKey;

/// Why an imported CA certificate is refused. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what}: not a PEM or DER certificate: {reason}")]
    Malformed { what: String, reason: String },
    #[error("the certificate is for another key than the HSM CA key {label:?} (sign the CSR from `credmint init --ca-csr`)")]
    KeyMismatch { label: String },
    #[error("the certificate is not a CA certificate: {0}")]
    NotCa(&'static str),
    #[error("the certificate is not valid now (notBefore..notAfter)")]
    NotValidNow,
    #[error("issuer chain: {0}")]
    Chain(String),
    #[error("the CA certificate is already installed and no CA key waits for one (run `credmint ca rotate --csr` first)")]
    AlreadyImported,
    #[error("intermediate CA mode: the CA certificate request {csr} is waiting for its certificate; run `credmint ca import <cert.pem> --chain <issuers.pem>`")]
    Pending { csr: String },
    #[error("`ca rotate --csr` is for intermediate CA mode (`init --ca-csr` + `ca import`); a single-tier root rotates online with `keys rotate ca`")]
    NotIntermediate,
    #[error("building the CSR failed: {0}")]
    Csr(#[from] rcgen::Error),
}

/// A PKCS#10 request for `key`, signed by it inside the HSM, subject `CN=<common name>,
/// O=credmint` like the single-tier root.
pub fn ca_csr_pem(key: &HsmKey, common_name: &str) -> Result<String, ImportError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "credmint");
    params.distinguished_name = dn;
    Ok(params.serialize_request(key)?.pem()?)
}

/// Every certificate in `pem` (one or more PEM blocks, or one DER certificate), as DER.
pub fn read_certificates(what: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ImportError> {
    let malformed = |reason: String| ImportError::Malformed {
        what: what.to_string(),
        reason,
    };
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|e| malformed(e.to_string()))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(malformed("no CERTIFICATE block".into()));
    }
    Ok(out)
}

fn parse<'a>(what: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, ImportError> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| ImportError::Malformed {
            what: what.to_string(),
            reason: e.to_string(),
        })
}

/// May `c` sign certificates? basicConstraints CA:TRUE and, when present, keyCertSign.
fn ca_flags(c: &X509Certificate<'_>) -> Result<(), &'static str> {
    match c.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        _ => return Err("basicConstraints CA:TRUE is missing"),
    }
    match c.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => Err("keyUsage lacks keyCertSign"),
        Err(_) => Err("keyUsage is malformed"),
        _ => Ok(()),
    }
}

/// Checks `cert_der` before it is installed: it certifies `key`, it is a CA certificate
/// with keyCertSign, it is valid now, and `chain` (nearest issuer first) verifies
/// signature by signature up to a self-signed root, its last certificate.
pub fn check_import(
    cert_der: &[u8],
    chain: &[Vec<u8>],
    key: &HsmKey,
    now: i64,
) -> Result<(), ImportError> {
    let cert = parse("certificate", cert_der)?;
    if cert.public_key().raw != key.public_key().spki_der().as_slice() {
        return Err(ImportError::KeyMismatch {
            label: key.label().to_string(),
        });
    }
    ca_flags(&cert).map_err(ImportError::NotCa)?;
    let valid = |c: &X509Certificate<'_>| {
        c.validity().not_before.timestamp() <= now && now <= c.validity().not_after.timestamp()
    };
    if !valid(&cert) {
        return Err(ImportError::NotValidNow);
    }
    if chain.is_empty() {
        return Err(ImportError::Chain(
            "empty: pass the issuer certificates up to the self-signed root with --chain".into(),
        ));
    }
    let mut child = cert;
    for (i, der) in chain.iter().enumerate() {
        let what = format!("chain certificate {}", i + 1);
        let issuer = parse(&what, der)?;
        let fail = |why: &str| ImportError::Chain(format!("{what} ({}): {why}", issuer.subject()));
        if child.issuer() != issuer.subject() {
            return Err(fail(&format!(
                "is not the issuer {} of the certificate below it",
                child.issuer()
            )));
        }
        child
            .verify_signature(Some(issuer.public_key()))
            .map_err(|_| fail("did not sign the certificate below it"))?;
        ca_flags(&issuer).map_err(&fail)?;
        if !valid(&issuer) {
            return Err(fail("not valid now"));
        }
        child = issuer;
    }
    let root = child;
    if root.subject() != root.issuer() || root.verify_signature(None).is_err() {
        return Err(ImportError::Chain(format!(
            "ends at {}, which is not a self-signed root",
            root.subject()
        )));
    }
    Ok(())
}
