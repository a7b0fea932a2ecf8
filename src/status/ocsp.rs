//! OCSP (RFC 6960) request parsing and response building, with no I/O.
//!
//! The CA key answers directly: responses carry `responderID byKey` (SHA-1 of the CA public
//! key's BIT STRING contents) and no certificates, so relying parties verify them with the CA
//! certificate they already hold.
//!
//! Flow for a caller (the HTTP handler):
//! 1. [`parse_request`] the body (POST) or the base64-decoded path segment (GET). An `Err`
//!    maps to [`error_response`] with [`OcspError::status`] (`malformedRequest`).
//! 2. For each [`RequestCertId`]: if [`OcspIssuer::matches`] is false (another issuer, or a
//!    hash algorithm other than SHA-1/SHA-256, see [`HashAlg::Unsupported`]) the answer is
//!    [`CertState::Unknown`], as RFC 6960 2.2 describes for "an unrecognized issuer". A caller
//!    may instead answer `unauthorized` ([`ErrorStatus::Unauthorized`], RFC 5019 2.2.3) when
//!    *no* CertID matches; that choice is the caller's, this module supports both. A serial
//!    never issued is `Unknown`, never `Good`.
//! 3. [`build_response`] with the answers, the request nonce (if any), the times and the
//!    signing closure (`|tbs| hsm_key.sign_x509(tbs)`). The signature is checked against the
//!    CA public key before the response is returned, so a wrong key, a raw r||s ECDSA value
//!    or an HSM fault never leaves as a response that verifies nowhere.
//!
//! Nonces (RFC 8954): a nonce can only be echoed by a fresh signature. Responses for
//! nonce-less requests can be pre-signed and cached (keyed by [`RequestCertId::der`], which
//! is exactly what the response echoes); a request with a nonce costs one HSM signature.
//! A nonce of 0 or more than 32 octets, or one that is not a DER OCTET STRING, is
//! `malformedRequest` (RFC 8954 2.1).
//!
//! Request signatures (`optionalSignature`) are neither required nor verified; requestorName
//! is ignored. Unrecognised *critical* request or single-request extensions make the request
//! malformed (RFC 6960 4.4: unrecognised critical extensions must not be ignored);
//! unrecognised non-critical ones are ignored.

use std::fmt;
use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse,
};

/// Largest request accepted, in bytes (before any decoding).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Most CertIDs accepted in one request.
pub const MAX_CERT_IDS: usize = 16;
/// Longest nonce accepted (RFC 8954 2.1).
pub const MAX_NONCE_LEN: usize = 32;

/// id-pkix-ocsp-nonce, 1.3.6.1.5.5.7.48.1.2.
pub const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
pub const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// The `DER(NULL)` parameters openssl and most clients put in a CertID hash algorithm.
const DER_NULL: &[u8] = &[0x05, 0x00];

/// Errors from parsing a request or building a response.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcspError {
    #[error("OCSP request of {0} bytes exceeds the {MAX_REQUEST_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("OCSP request lists {0} certificates; at most {MAX_CERT_IDS} are answered")]
    TooManyCertIds(usize),
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    #[error("CA certificate unusable for OCSP: {0}")]
    BadCaCert(String),
    #[error("signature algorithm {requested:?} does not match the CA key ({ca:?})")]
    AlgorithmMismatch { requested: SigAlg, ca: SigAlg },
    #[error("invalid CRLReason code {0}")]
    InvalidReason(u8),
    #[error("time {0} (unix seconds) cannot be encoded as GeneralizedTime")]
    BadTime(u64),
    #[error("cannot encode OCSP structure: {0}")]
    Encode(String),
    #[error("signer returned a signature that does not verify under the CA key")]
    BadSignature,
}

impl OcspError {
    /// The OCSPResponseStatus to answer with when this error ends a request.
    pub fn status(&self) -> ErrorStatus {
        match self {
            OcspError::TooLarge(_) | OcspError::TooManyCertIds(_) | OcspError::Malformed(_) => {
                ErrorStatus::MalformedRequest
            }
            _ => ErrorStatus::InternalError,
        }
    }
}

/// Failure of [`build_response`]: either the structure could not be built (or the returned
/// signature did not verify), or the caller's signer failed.
#[derive(Debug)]
pub enum BuildError<E> {
    Ocsp(OcspError),
    Sign(E),
}

impl<E: fmt::Display> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Ocsp(e) => write!(f, "{e}"),
            BuildError::Sign(e) => write!(f, "OCSP signing failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for BuildError<E> {}

impl<E> From<OcspError> for BuildError<E> {
    fn from(e: OcspError) -> Self {
        BuildError::Ocsp(e)
    }
}

/// Non-successful OCSPResponseStatus values (RFC 6960 4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

impl ErrorStatus {
    /// The RFC 6960 ASN.1 name (a metrics label).
    pub fn name(self) -> &'static str {
        match self {
            ErrorStatus::MalformedRequest => "malformedRequest",
            ErrorStatus::InternalError => "internalError",
            ErrorStatus::TryLater => "tryLater",
            ErrorStatus::Unauthorized => "unauthorized",
        }
    }
}

/// Signature algorithm of the CA key, as written in BasicOCSPResponse.signatureAlgorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    /// ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters; the signer returns a DER
    /// ECDSA-Sig-Value.
    EcdsaP256Sha256,
    /// Ed25519 (1.3.101.112), no parameters; the signer returns the raw 64 bytes.
    Ed25519,
}

impl SigAlg {
    fn oid(self) -> ObjectIdentifier {
        match self {
            SigAlg::EcdsaP256Sha256 => OID_ECDSA_SHA256,
            SigAlg::Ed25519 => OID_ED25519,
        }
    }
}

/// Hash algorithm of a request CertID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Sha1,
    Sha256,
    /// Any other algorithm (dotted OID). Never matches this issuer, so it is answered
    /// `unknown`; the CertID is still echoed verbatim.
    Unsupported(String),
}

/// One CertID from a request, kept with its exact DER so the response echoes it unchanged
/// (same hash algorithm, same parameters, same serial encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestCertId {
    hash: HashAlg,
    issuer_name_hash: Vec<u8>,
    issuer_key_hash: Vec<u8>,
    serial: Vec<u8>,
    der: Vec<u8>,
}

impl RequestCertId {
    fn from_cert_id(id: &CertId) -> Result<Self, OcspError> {
        let oid = id.hash_algorithm.oid;
        let hash = if oid == OID_SHA1 {
            HashAlg::Sha1
        } else if oid == OID_SHA256 {
            HashAlg::Sha256
        } else {
            HashAlg::Unsupported(oid.to_string())
        };
        let der = id
            .to_der()
            .map_err(|e| OcspError::Malformed(format!("CertID: {e}")))?;
        Ok(RequestCertId {
            hash,
            issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
            serial: id.serial_number.as_bytes().to_vec(),
            der,
        })
    }

    pub fn hash(&self) -> &HashAlg {
        &self.hash
    }
    pub fn issuer_name_hash(&self) -> &[u8] {
        &self.issuer_name_hash
    }
    pub fn issuer_key_hash(&self) -> &[u8] {
        &self.issuer_key_hash
    }
    /// The serial as the contents octets of its DER INTEGER (minimal two's complement: a
    /// leading 0x00 only when the top bit is set). For credmint's `random_serial()` values
    /// this is exactly the 16 bytes that were issued.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// The CertID's DER, exactly as the response will echo it: a cache key for pre-signed
    /// responses.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// A decoded, bounded OCSPRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// 1..=[`MAX_CERT_IDS`] CertIDs, in request order.
    pub cert_ids: Vec<RequestCertId>,
    /// The nonce value (contents of the Nonce OCTET STRING, 1..=32 bytes), if sent.
    pub nonce: Option<Vec<u8>>,
}

/// Status of one certificate, as decided by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    Good,
    /// `reason` is a CRLReason code; `None` and `Some(0)` (unspecified) omit the field.
    Revoked {
        revoked_at: u64,
        reason: Option<u8>,
    },
    Unknown,
}

/// The CA as an OCSP responder: hashes precomputed from its certificate.
#[derive(Debug, Clone)]
pub struct OcspIssuer {
    name_sha1: [u8; 20],
    key_sha1: [u8; 20],
    name_sha256: [u8; 32],
    key_sha256: [u8; 32],
    spki_der: Vec<u8>,
    sig_alg: SigAlg,
}

impl OcspIssuer {
    /// Reads the CA certificate: hashes of its subject Name DER (as encoded in the
    /// certificate) and of its public key BIT STRING contents. The key must be P-256 or
    /// Ed25519.
    pub fn from_ca_der(ca_der: &[u8]) -> Result<Self, OcspError> {
        let bad = |m: String| OcspError::BadCaCert(m);
        let (rest, cert) =
            x509_parser::parse_x509_certificate(ca_der).map_err(|e| bad(e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate".into()));
        }
        let subject = cert.tbs_certificate.subject.as_raw();
        let spki = cert.public_key();
        if spki.subject_public_key.unused_bits != 0 {
            return Err(bad("public key BIT STRING has unused bits".into()));
        }
        let key_bits: &[u8] = &spki.subject_public_key.data;
        let alg_oid = spki.algorithm.algorithm.to_id_string();
        let sig_alg = match alg_oid.as_str() {
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() != Some("1.2.840.10045.3.1.7") {
                    return Err(bad(format!("EC key on curve {curve:?}, not P-256")));
                }
                SigAlg::EcdsaP256Sha256
            }
            "1.3.101.112" => SigAlg::Ed25519,
            other => return Err(bad(format!("unsupported CA key algorithm {other}"))),
        };
        Ok(OcspIssuer {
            name_sha1: sha1_of(subject),
            key_sha1: sha1_of(key_bits),
            name_sha256: sha256_of(subject),
            key_sha256: sha256_of(key_bits),
            spki_der: spki.raw.to_vec(),
            sig_alg,
        })
    }

    /// ResponderID byKey: SHA-1 of the CA public key BIT STRING contents.
    pub fn responder_key_hash(&self) -> &[u8; 20] {
        &self.key_sha1
    }

    /// The signature algorithm the CA key implies.
    pub fn sig_alg(&self) -> SigAlg {
        self.sig_alg
    }

    /// issuerNameHash under `hash` (None for unsupported algorithms).
    pub fn name_hash(&self, hash: &HashAlg) -> Option<&[u8]> {
        match hash {
            HashAlg::Sha1 => Some(&self.name_sha1),
            HashAlg::Sha256 => Some(&self.name_sha256),
            HashAlg::Unsupported(_) => None,
        }
    }

    /// issuerKeyHash under `hash` (None for unsupported algorithms).
    pub fn key_hash(&self, hash: &HashAlg) -> Option<&[u8]> {
        match hash {
            HashAlg::Sha1 => Some(&self.key_sha1),
            HashAlg::Sha256 => Some(&self.key_sha256),
            HashAlg::Unsupported(_) => None,
        }
    }

    /// True when `id` names this CA (name and key hash, under the request's algorithm).
    pub fn matches(&self, id: &RequestCertId) -> bool {
        match (self.name_hash(&id.hash), self.key_hash(&id.hash)) {
            (Some(n), Some(k)) => n == id.issuer_name_hash && k == id.issuer_key_hash,
            _ => false,
        }
    }

    /// The CertID a client would send for `serial` (DER INTEGER contents or unsigned
    /// magnitude) under `hash`, with NULL parameters as openssl writes them: for pre-signing
    /// responses to nonce-less requests.
    pub fn cert_id(&self, hash: HashAlg, serial: &[u8]) -> Result<RequestCertId, OcspError> {
        let (oid, name, key) = match hash {
            HashAlg::Sha1 => (OID_SHA1, &self.name_sha1[..], &self.key_sha1[..]),
            HashAlg::Sha256 => (OID_SHA256, &self.name_sha256[..], &self.key_sha256[..]),
            HashAlg::Unsupported(o) => {
                return Err(OcspError::Encode(format!("unsupported hash {o}")))
            }
        };
        let enc = |e: der::Error| OcspError::Encode(e.to_string());
        let id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid,
                parameters: Some(der::Any::from_der(DER_NULL).map_err(enc)?),
            },
            issuer_name_hash: OctetString::new(name).map_err(enc)?,
            issuer_key_hash: OctetString::new(key).map_err(enc)?,
            serial_number: SerialNumber::new(serial).map_err(enc)?,
        };
        RequestCertId::from_cert_id(&id)
    }

    fn verify(&self, alg: SigAlg, tbs: &[u8], sig: &[u8]) -> bool {
        use x509_parser::prelude::FromDer;
        let Ok((_, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&self.spki_der)
        else {
            return false;
        };
        let oid = match alg {
            SigAlg::EcdsaP256Sha256 => x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256,
            SigAlg::Ed25519 => x509_parser::oid_registry::OID_SIG_ED25519,
        };
        let alg_id = x509_parser::x509::AlgorithmIdentifier::new(oid, None);
        let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, sig);
        x509_parser::verify::verify_signature(&spki, &alg_id, &bits, tbs).is_ok()
    }
}

/// Decodes an OCSPRequest (DER). Never panics; see the module docs for what is rejected.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, OcspError> {
    if der.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::TooLarge(der.len()));
    }
    let req = OcspRequest::from_der(der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    let tbs = &req.tbs_request;
    let list = &tbs.request_list;
    if list.is_empty() {
        return Err(OcspError::Malformed("empty requestList".into()));
    }
    if list.len() > MAX_CERT_IDS {
        return Err(OcspError::TooManyCertIds(list.len()));
    }
    let mut cert_ids = Vec::with_capacity(list.len());
    for r in list {
        for ext in r.single_request_extensions.iter().flatten() {
            if ext.critical {
                return Err(OcspError::Malformed(format!(
                    "unsupported critical single-request extension {}",
                    ext.extn_id
                )));
            }
        }
        cert_ids.push(RequestCertId::from_cert_id(&r.req_cert)?);
    }
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        if ext.extn_id == OID_OCSP_NONCE {
            if nonce.is_some() {
                return Err(OcspError::Malformed("duplicate nonce extension".into()));
            }
            let value = OctetString::from_der(ext.extn_value.as_bytes()).map_err(|_| {
                OcspError::Malformed("nonce extension value is not a DER OCTET STRING".into())
            })?;
            let value = value.as_bytes();
            if value.is_empty() || value.len() > MAX_NONCE_LEN {
                return Err(OcspError::Malformed(format!(
                    "nonce of {} bytes (RFC 8954: 1..={MAX_NONCE_LEN})",
                    value.len()
                )));
            }
            nonce = Some(value.to_vec());
        } else if ext.critical {
            return Err(OcspError::Malformed(format!(
                "unsupported critical request extension {}",
                ext.extn_id
            )));
        }
    }
    Ok(ParsedRequest { cert_ids, nonce })
}

// sha1 0.10 and sha2 0.11 implement different `digest` versions: one helper each.
fn sha1_of(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

fn sha256_of(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn gtime(unix: u64) -> Result<OcspGeneralizedTime, OcspError> {
    GeneralizedTime::from_unix_duration(Duration::from_secs(unix))
        .map(OcspGeneralizedTime)
        .map_err(|_| OcspError::BadTime(unix))
}

/// Maps a CRLReason code; `Ok(None)` for "omit" (None or unspecified).
fn crl_reason(code: Option<u8>) -> Result<Option<CrlReason>, OcspError> {
    Ok(Some(match code {
        None | Some(0) => return Ok(None),
        Some(1) => CrlReason::KeyCompromise,
        Some(2) => CrlReason::CaCompromise,
        Some(3) => CrlReason::AffiliationChanged,
        Some(4) => CrlReason::Superseded,
        Some(5) => CrlReason::CessationOfOperation,
        Some(6) => CrlReason::CertificateHold,
        Some(8) => CrlReason::RemoveFromCRL,
        Some(9) => CrlReason::PrivilegeWithdrawn,
        Some(10) => CrlReason::AaCompromise,
        Some(other) => return Err(OcspError::InvalidReason(other)),
    }))
}

/// Builds a signed, successful OCSPResponse (DER).
///
/// One SingleResponse per answer, in order, each echoing its request CertID byte for byte.
/// `this_update`/`next_update` apply to every answer (`next_update` must be later);
/// `produced_at` is the signing time and may not precede `this_update`. `sign` is called
/// exactly once, with the DER of ResponseData, and must return a DER ECDSA-Sig-Value (P-256)
/// or the raw 64-byte Ed25519 signature; it is verified against the CA key before the
/// response is returned.
#[allow(clippy::too_many_arguments)]
pub fn build_response<E>(
    issuer: &OcspIssuer,
    answers: &[(RequestCertId, CertState)],
    nonce: Option<&[u8]>,
    produced_at: u64,
    this_update: u64,
    next_update: u64,
    alg: SigAlg,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, BuildError<E>> {
    if alg != issuer.sig_alg {
        return Err(OcspError::AlgorithmMismatch {
            requested: alg,
            ca: issuer.sig_alg,
        }
        .into());
    }
    if answers.is_empty() {
        return Err(OcspError::Encode("no answers".into()).into());
    }
    if next_update <= this_update {
        return Err(OcspError::Encode("nextUpdate must be after thisUpdate".into()).into());
    }
    if this_update > produced_at {
        return Err(OcspError::Encode("thisUpdate must not be after producedAt".into()).into());
    }
    let enc = |e: der::Error| OcspError::Encode(e.to_string());
    let this = gtime(this_update)?;
    let next = gtime(next_update)?;
    let mut responses = Vec::with_capacity(answers.len());
    for (id, state) in answers {
        let cert_status = match *state {
            CertState::Good => CertStatus::good(),
            CertState::Unknown => CertStatus::unknown(),
            CertState::Revoked { revoked_at, reason } => CertStatus::revoked(RevokedInfo {
                revocation_time: gtime(revoked_at)?,
                revocation_reason: crl_reason(reason)?,
            }),
        };
        responses.push(SingleResponse {
            cert_id: CertId::from_der(&id.der).map_err(enc)?,
            cert_status,
            this_update: this,
            next_update: Some(next),
            single_extensions: None,
        });
    }
    let response_extensions = match nonce {
        None => None,
        Some(n) => {
            if n.is_empty() || n.len() > MAX_NONCE_LEN {
                return Err(OcspError::Encode(format!("nonce of {} bytes", n.len())).into());
            }
            let value = OctetString::new(n).map_err(enc)?.to_der().map_err(enc)?;
            Some(vec![Extension {
                extn_id: OID_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(value).map_err(enc)?,
            }])
        }
    };
    let tbs = ResponseData {
        version: Default::default(),
        responder_id: ResponderId::ByKey(OctetString::new(&issuer.key_sha1[..]).map_err(enc)?),
        produced_at: gtime(produced_at)?,
        responses,
        response_extensions,
    };
    let tbs_der = tbs.to_der().map_err(enc)?;
    let signature = sign(&tbs_der).map_err(BuildError::Sign)?;
    if !issuer.verify(alg, &tbs_der, &signature) {
        return Err(OcspError::BadSignature.into());
    }
    let basic = BasicOcspResponse {
        tbs_response_data: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: alg.oid(),
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).map_err(enc)?,
        certs: None,
    };
    let resp = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: OID_OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(enc)?).map_err(enc)?,
        }),
    };
    Ok(resp.to_der().map_err(enc)?)
}

/// An unsigned OCSPResponse carrying only a non-successful status (RFC 6960 4.2.1).
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    // SEQUENCE { responseStatus ENUMERATED }
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SigningKey,
    };

    fn ca(alg: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "unit CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (params.self_signed(&key).unwrap().der().to_vec(), key)
    }

    /// Hand-built minimal OCSPRequest around one CertID DER and optional extensions DER.
    fn request(cert_ids: &[&[u8]], exts: Option<&[u8]>) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let n = body.len();
            if n < 128 {
                out.push(n as u8);
            } else if n < 256 {
                out.extend([0x81, n as u8]);
            } else {
                out.extend([0x82, (n >> 8) as u8, n as u8]);
            }
            out.extend_from_slice(body);
            out
        }
        let list: Vec<u8> = cert_ids.iter().flat_map(|id| tlv(0x30, id)).collect();
        let mut tbs = tlv(0x30, &list);
        if let Some(e) = exts {
            tbs.extend(tlv(0xa2, &tlv(0x30, e)));
        }
        tlv(0x30, &tlv(0x30, &tbs))
    }

    fn nonce_ext(value: &[u8]) -> Vec<u8> {
        let inner = OctetString::new(value).unwrap().to_der().unwrap();
        Extension {
            extn_id: OID_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(inner).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn round_trip_own_cert_id_and_nonce_limits() {
        let (ca_der, _) = ca(&rcgen::PKCS_ECDSA_P256_SHA256);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let id = issuer.cert_id(HashAlg::Sha256, &[0x11; 16]).unwrap();
        let req = parse_request(&request(&[id.der()], Some(&nonce_ext(&[7; 32])))).unwrap();
        assert_eq!(req.cert_ids, vec![id.clone()]);
        assert!(issuer.matches(&req.cert_ids[0]));
        assert_eq!(req.cert_ids[0].serial(), &[0x11; 16]);
        assert_eq!(req.nonce.as_deref(), Some(&[7u8; 32][..]));

        for bad in [&[][..], &[1u8; 33][..]] {
            let err = parse_request(&request(&[id.der()], Some(&nonce_ext(bad)))).unwrap_err();
            assert!(matches!(err, OcspError::Malformed(_)), "{err:?}");
            assert_eq!(err.status(), ErrorStatus::MalformedRequest);
        }
        let two = [nonce_ext(&[1; 16]), nonce_ext(&[2; 16])].concat();
        assert!(parse_request(&request(&[id.der()], Some(&two))).is_err());
    }

    #[test]
    fn cert_id_limits_and_foreign_issuer() {
        let (ca_der, _) = ca(&rcgen::PKCS_ED25519);
        let (other_der, _) = ca(&rcgen::PKCS_ED25519);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let other = OcspIssuer::from_ca_der(&other_der).unwrap();
        assert_eq!(issuer.sig_alg(), SigAlg::Ed25519);
        let foreign = other.cert_id(HashAlg::Sha1, &[5; 8]).unwrap();
        assert!(!issuer.matches(&foreign));
        assert!(other.matches(&foreign));

        let id = issuer.cert_id(HashAlg::Sha1, &[5; 8]).unwrap();
        let ids: Vec<&[u8]> = std::iter::repeat_n(id.der(), 16).collect();
        assert_eq!(
            parse_request(&request(&ids, None)).unwrap().cert_ids.len(),
            16
        );
        let ids: Vec<&[u8]> = std::iter::repeat_n(id.der(), 17).collect();
        assert_eq!(
            parse_request(&request(&ids, None)),
            Err(OcspError::TooManyCertIds(17))
        );
        assert!(matches!(
            parse_request(&request(&[], None)),
            Err(OcspError::Malformed(_))
        ));
        assert_eq!(
            parse_request(&vec![0u8; MAX_REQUEST_BYTES + 1]),
            Err(OcspError::TooLarge(MAX_REQUEST_BYTES + 1))
        );
    }

    #[test]
    fn unsupported_hash_is_parsed_but_never_matches() {
        let (ca_der, _) = ca(&rcgen::PKCS_ECDSA_P256_SHA256);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let mut id =
            CertId::from_der(issuer.cert_id(HashAlg::Sha256, &[1]).unwrap().der()).unwrap();
        id.hash_algorithm.oid = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
        let der = id.to_der().unwrap();
        let req = parse_request(&request(&[&der], None)).unwrap();
        assert_eq!(
            req.cert_ids[0].hash(),
            &HashAlg::Unsupported("2.16.840.1.101.3.4.2.2".into())
        );
        assert!(!issuer.matches(&req.cert_ids[0]));
    }

    #[test]
    fn critical_unknown_extension_is_malformed() {
        let (ca_der, _) = ca(&rcgen::PKCS_ECDSA_P256_SHA256);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let id = issuer.cert_id(HashAlg::Sha1, &[1]).unwrap();
        let ext = Extension {
            extn_id: ObjectIdentifier::new_unwrap("1.2.3.4"),
            critical: true,
            extn_value: OctetString::new(vec![5, 0]).unwrap(),
        }
        .to_der()
        .unwrap();
        assert!(parse_request(&request(&[id.der()], Some(&ext))).is_err());
        let ext = Extension {
            critical: false,
            ..Extension::from_der(&ext).unwrap()
        }
        .to_der()
        .unwrap();
        assert!(parse_request(&request(&[id.der()], Some(&ext))).is_ok());
    }

    #[test]
    fn build_checks_algorithm_signature_and_reason() {
        let (ca_der, key) = ca(&rcgen::PKCS_ECDSA_P256_SHA256);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let id = issuer.cert_id(HashAlg::Sha1, &[9; 16]).unwrap();
        let good = [(id.clone(), CertState::Good)];
        let sign = |m: &[u8]| key.sign(m);

        let ok = build_response(
            &issuer,
            &good,
            None,
            100,
            100,
            200,
            SigAlg::EcdsaP256Sha256,
            sign,
        );
        assert!(ok.is_ok());

        let wrong_alg = build_response(&issuer, &good, None, 100, 100, 200, SigAlg::Ed25519, sign);
        assert!(matches!(
            wrong_alg,
            Err(BuildError::Ocsp(OcspError::AlgorithmMismatch { .. }))
        ));

        // A raw r||s signature (the PKCS#11 form) is refused, not shipped.
        let raw = |m: &[u8]| -> Result<Vec<u8>, rcgen::Error> {
            let der = key.sign(m)?;
            let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
            Ok(sig.to_bytes().to_vec())
        };
        let r = build_response(
            &issuer,
            &good,
            None,
            100,
            100,
            200,
            SigAlg::EcdsaP256Sha256,
            raw,
        );
        assert!(matches!(r, Err(BuildError::Ocsp(OcspError::BadSignature))));

        let other_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let r = build_response(
            &issuer,
            &good,
            None,
            1,
            1,
            2,
            SigAlg::EcdsaP256Sha256,
            |m| other_key.sign(m),
        );
        assert!(matches!(r, Err(BuildError::Ocsp(OcspError::BadSignature))));

        let failing = |_: &[u8]| -> Result<Vec<u8>, &'static str> { Err("hsm down") };
        let r = build_response(
            &issuer,
            &good,
            None,
            1,
            1,
            2,
            SigAlg::EcdsaP256Sha256,
            failing,
        );
        assert!(matches!(r, Err(BuildError::Sign("hsm down"))));

        let revoked7 = [(
            id.clone(),
            CertState::Revoked {
                revoked_at: 50,
                reason: Some(7),
            },
        )];
        let r = build_response(
            &issuer,
            &revoked7,
            None,
            100,
            100,
            200,
            SigAlg::EcdsaP256Sha256,
            sign,
        );
        assert!(matches!(
            r,
            Err(BuildError::Ocsp(OcspError::InvalidReason(7)))
        ));

        let r = build_response(
            &issuer,
            &good,
            None,
            100,
            200,
            200,
            SigAlg::EcdsaP256Sha256,
            sign,
        );
        assert!(r.is_err(), "nextUpdate must follow thisUpdate");
        let r = build_response(
            &issuer,
            &good,
            None,
            100,
            150,
            200,
            SigAlg::EcdsaP256Sha256,
            sign,
        );
        assert!(r.is_err(), "thisUpdate in the future of producedAt");
    }

    #[test]
    fn response_structure_and_error_responses() {
        let (ca_der, key) = ca(&rcgen::PKCS_ED25519);
        let issuer = OcspIssuer::from_ca_der(&ca_der).unwrap();
        let id = issuer.cert_id(HashAlg::Sha256, &[0x80, 1]).unwrap();
        let answers = [(
            id.clone(),
            CertState::Revoked {
                revoked_at: 1_700_000_000,
                reason: Some(0),
            },
        )];
        let mut calls = 0;
        let der = build_response(
            &issuer,
            &answers,
            Some(&[0xab; 16]),
            1_700_000_100,
            1_700_000_100,
            1_700_003_700,
            SigAlg::Ed25519,
            |m| {
                calls += 1;
                key.sign(m)
            },
        )
        .unwrap();
        assert_eq!(calls, 1);
        let resp = OcspResponse::from_der(&der).unwrap();
        assert_eq!(resp.response_status, OcspResponseStatus::Successful);
        let bytes = resp.response_bytes.unwrap();
        assert_eq!(bytes.response_type, OID_OCSP_BASIC);
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        assert_eq!(basic.signature_algorithm.oid, OID_ED25519);
        assert!(basic.signature_algorithm.parameters.is_none());
        assert!(basic.certs.is_none());
        let data = basic.tbs_response_data;
        assert_eq!(
            data.responder_id,
            ResponderId::ByKey(OctetString::new(&issuer.responder_key_hash()[..]).unwrap())
        );
        assert_eq!(data.nonce().unwrap().0.as_bytes(), &[0xab; 16]);
        let single = &data.responses[0];
        assert_eq!(single.cert_id.to_der().unwrap(), id.der());
        match single.cert_status {
            CertStatus::Revoked(info) => {
                assert!(info.revocation_reason.is_none(), "unspecified is omitted");
                assert_eq!(
                    info.revocation_time.0.to_unix_duration().as_secs(),
                    1_700_000_000
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            single.next_update.unwrap().0.to_unix_duration().as_secs(),
            1_700_003_700
        );

        for (status, code) in [
            (
                ErrorStatus::MalformedRequest,
                OcspResponseStatus::MalformedRequest,
            ),
            (
                ErrorStatus::InternalError,
                OcspResponseStatus::InternalError,
            ),
            (ErrorStatus::TryLater, OcspResponseStatus::TryLater),
            (ErrorStatus::Unauthorized, OcspResponseStatus::Unauthorized),
        ] {
            let r = OcspResponse::from_der(&error_response(status)).unwrap();
            assert_eq!(r.response_status, code);
            assert!(r.response_bytes.is_none());
        }
    }

    #[test]
    fn rejects_unusable_ca() {
        assert!(OcspIssuer::from_ca_der(b"not a cert").is_err());
        let (mut ca_der, _) = ca(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert!(matches!(
            OcspIssuer::from_ca_der(&ca_der),
            Err(OcspError::BadCaCert(_))
        ));
        let (good, _) = ca(&rcgen::PKCS_ECDSA_P256_SHA256);
        ca_der = good;
        ca_der.push(0);
        assert!(OcspIssuer::from_ca_der(&ca_der).is_err());
    }
}
