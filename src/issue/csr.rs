//! CSR intake: the only place attacker-supplied certificate requests are parsed.
//!
//! A request is accepted only if it is small, well-formed, self-signed with a modern
//! algorithm (proof of possession), and carries a key type credmint issues for. What it
//! *asks for* (names) is returned for policy to judge, never trusted here. Every failure
//! is a [`CsrError`] whose message is safe to return in a 400 body.

use base64::Engine;
use sha2::{Digest, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{self as oids, Oid};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Largest accepted request, PEM or DER. An RSA-8192 CSR with a few names is ~3 KiB.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Largest RSA modulus accepted (the verifier's limit; larger keys cost CPU for nothing).
const MAX_RSA_BITS: usize = 8192;

/// Leaf key types credmint certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKeyKind {
    Ed25519,
    P256,
    Rsa { bits: usize },
}

/// A CSR whose self-signature verified and whose key type is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCsr {
    /// The SubjectPublicKeyInfo exactly as it will appear in the certificate.
    pub spki_der: Vec<u8>,
    pub key_kind: LeafKeyKind,
    /// Requested dNSName SANs, in request order.
    pub dns_names: Vec<String>,
    /// Requested uniformResourceIdentifier SANs, in request order.
    pub uris: Vec<String>,
    /// Other requested SAN types (`iPAddress`, `rfc822Name`, ...), in request order, one
    /// entry per name. credmint certifies none of them; policy refuses such a request
    /// (403) rather than silently leaving names out of the certificate.
    pub unsupported_names: Vec<&'static str>,
    /// SHA-256 of `spki_der`: the key's identity for reuse and revocation tracking.
    pub key_fingerprint: [u8; 32],
}

/// Why a CSR was refused. Messages name the problem without echoing request bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("certificate request exceeds {MAX_CSR_BYTES} bytes")]
    TooLarge,
    #[error("malformed certificate request: {0}")]
    Malformed(String),
    #[error("certificate request signature does not verify with its own public key")]
    BadSignature,
    #[error("key type {found} is not allowed; use Ed25519, ECDSA P-256 or RSA >= 2048 bits")]
    KeyTypeNotAllowed { found: String },
    #[error("RSA key of {bits} bits is too small; at least 2048 bits are required")]
    RsaTooSmall { bits: usize },
}

impl CsrError {
    /// Short fixed category for metric labels and machine-readable error codes.
    pub fn kind(&self) -> &'static str {
        match self {
            CsrError::TooLarge => "csr_too_large",
            CsrError::Malformed(_) => "csr_malformed",
            CsrError::BadSignature => "csr_bad_signature",
            CsrError::KeyTypeNotAllowed { .. } => "csr_key_type_not_allowed",
            CsrError::RsaTooSmall { .. } => "csr_rsa_too_small",
        }
    }
}

fn malformed(reason: impl Into<String>) -> CsrError {
    CsrError::Malformed(reason.into())
}

/// Parses and checks a PKCS#10 request given as PEM (`CERTIFICATE REQUEST`) or DER.
pub fn parse_csr(input: &[u8]) -> Result<ValidCsr, CsrError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(CsrError::TooLarge);
    }
    let der = if input.trim_ascii_start().starts_with(b"-----BEGIN ") {
        decode_pem(input)?
    } else {
        input.to_vec()
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|_| malformed("not a DER PKCS#10 certification request"))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after the certification request"));
    }
    let info = &csr.certification_request_info;
    if info.version.0 != 0 {
        return Err(malformed("unsupported certification request version"));
    }
    // Key policy first: RSA-1024 would otherwise surface as a signature failure.
    let key_kind = classify_key(&info.subject_pki)?;
    check_signature_algorithm(&csr.signature_algorithm.algorithm)?;
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    let spki = rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
        .map_err(|_| malformed("public key encoding is not supported"))?;
    let spki_der = rcgen::PublicKeyData::subject_public_key_info(&spki);
    let (dns_names, uris, unsupported_names) = requested_names(&csr)?;
    Ok(ValidCsr {
        key_fingerprint: Sha256::digest(&spki_der).into(),
        spki_der,
        key_kind,
        dns_names,
        uris,
        unsupported_names,
    })
}

/// Strict single-block PEM: BEGIN line, base64 body, matching END line, only whitespace
/// around it.
fn decode_pem(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    let text = std::str::from_utf8(input).map_err(|_| malformed("PEM is not valid UTF-8"))?;
    let text = text.trim();
    let (label, body) = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]
        .iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {label}-----");
            text.strip_prefix(begin.as_str()).map(|body| (*label, body))
        })
        .ok_or_else(|| malformed("PEM label must be CERTIFICATE REQUEST"))?;
    let blocks = text.matches("-----BEGIN ").count();
    if blocks > 1 {
        return Err(malformed(format!(
            "exactly one PEM block (CERTIFICATE REQUEST) is expected, found {blocks}"
        )));
    }
    let end = format!("-----END {label}-----");
    let body = body
        .strip_suffix(end.as_str())
        .ok_or_else(|| malformed("PEM END line missing or not last"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| malformed("PEM body is not valid base64"))
}

fn oid_name(oid: &Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn classify_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<LeafKeyKind, CsrError> {
    let alg = &spki.algorithm;
    let key = &spki.subject_public_key;
    if key.unused_bits != 0 {
        return Err(malformed("public key BIT STRING has unused bits"));
    }
    let data: &[u8] = &key.data;
    if alg.algorithm == oids::OID_SIG_ED25519 {
        if alg.parameters.is_some() || data.len() != 32 {
            return Err(malformed("Ed25519 key must be 32 bytes with no parameters"));
        }
        Ok(LeafKeyKind::Ed25519)
    } else if alg.algorithm == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .ok_or_else(|| malformed("EC key without a named curve"))?;
        if curve != oids::OID_EC_P256 {
            return Err(CsrError::KeyTypeNotAllowed {
                found: format!("EC {}", oid_name(&curve)),
            });
        }
        // Uncompressed only: several verifiers (Go crypto/x509) refuse compressed points.
        if data.len() != 65 || data[0] != 0x04 || p256::PublicKey::from_sec1_bytes(data).is_err() {
            return Err(malformed("P-256 key must be a valid uncompressed point"));
        }
        Ok(LeafKeyKind::P256)
    } else if alg.algorithm == oids::OID_PKCS1_RSAENCRYPTION {
        let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = spki.parsed() else {
            return Err(malformed("RSA public key does not parse"));
        };
        let bits = significant_bits(rsa.modulus);
        if bits < 2048 {
            return Err(CsrError::RsaTooSmall { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(CsrError::KeyTypeNotAllowed {
                found: format!("RSA-{bits} (at most {MAX_RSA_BITS} bits)"),
            });
        }
        Ok(LeafKeyKind::Rsa { bits })
    } else {
        Err(CsrError::KeyTypeNotAllowed {
            found: oid_name(&alg.algorithm),
        })
    }
}

/// Bit length of a big-endian unsigned integer, ignoring leading zero octets.
fn significant_bits(be: &[u8]) -> usize {
    match be.iter().position(|b| *b != 0) {
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
        None => 0,
    }
}

/// SHA-1 and anything exotic are refused even when they would verify.
fn check_signature_algorithm(oid: &Oid<'_>) -> Result<(), CsrError> {
    let allowed = [
        oids::OID_SIG_ED25519,
        oids::OID_SIG_ECDSA_WITH_SHA256,
        oids::OID_SIG_ECDSA_WITH_SHA384,
        oids::OID_PKCS1_SHA256WITHRSA,
        oids::OID_PKCS1_SHA384WITHRSA,
        oids::OID_PKCS1_SHA512WITHRSA,
        oids::OID_PKCS1_RSASSAPSS,
    ];
    if allowed.contains(oid) {
        Ok(())
    } else {
        Err(malformed(format!(
            "signature algorithm {} is not accepted",
            oid_name(oid)
        )))
    }
}

/// The SANs of the extensionRequest attribute: dNSNames, URIs, and the types of all other
/// names (for policy to refuse). Other extensions are ignored (policy decides what a
/// certificate carries); an unparsable or repeated subjectAltName is an error, so a request
/// never silently loses names.
fn requested_names(csr: &X509CertificationRequest<'_>) -> Result<RequestedNames, CsrError> {
    let (mut dns, mut uris, mut other) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen_san = false;
    for attr in csr.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() else {
            continue;
        };
        for ext in &req.extensions {
            if ext.oid != oids::OID_X509_EXT_SUBJECT_ALT_NAME {
                continue;
            }
            if seen_san {
                return Err(malformed("subjectAltName requested more than once"));
            }
            seen_san = true;
            let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() else {
                return Err(malformed("requested subjectAltName does not parse"));
            };
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(n) if n.is_ascii() => dns.push((*n).to_owned()),
                    GeneralName::URI(u) if u.is_ascii() => uris.push((*u).to_owned()),
                    GeneralName::DNSName(_) | GeneralName::URI(_) | GeneralName::Invalid(..) => {
                        return Err(malformed("requested subjectAltName has an invalid name"));
                    }
                    other_name => other.push(san_type(other_name)),
                }
            }
        }
    }
    Ok((dns, uris, other))
}

/// dNSNames, URIs, other SAN types.
type RequestedNames = (Vec<String>, Vec<String>, Vec<&'static str>);

/// The RFC 5280 name of a GeneralName's type (as error messages and the README say it).
fn san_type(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name (e-mail)",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData, SignatureAlgorithm};

    /// `openssl req -new -newkey rsa:1024 -sha256 -subj /CN=small
    ///  -addext subjectAltName=DNS:small.example`
    const RSA_1024_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIIBejCB5AIBADAQMQ4wDAYDVQQDDAVzbWFsbDCBnzANBgkqhkiG9w0BAQEFAAOB
jQAwgYkCgYEAsobe2qaDRfVoWI7dfhhEu5IfNukSdYWRU/6hBDcCHTq4sAgvH7SZ
2mRz33UZtmiZHbhPiAnutTzJ1bthc9s0NjYdrZKjnB2h3ApV9S25zdnCqsLAlAil
+I/hvH6930n4P6IwLS1tLkEP4dguw/esM4t6X3w9981H8xblTsCt8jMCAwEAAaAr
MCkGCSqGSIb3DQEJDjEcMBowGAYDVR0RBBEwD4INc21hbGwuZXhhbXBsZTANBgkq
hkiG9w0BAQsFAAOBgQBrh4AG0Lee6M3zw0i7WlZisCFZJAr7QskCNUzzf/VdbwUG
Qk3ADfiiqxaoP0H0ZrBYeFxef3mfNAGue9fHTJa1SdseOr07IMmlrU06SlDbr+Sx
If0E7qGAMBi5X4/6ZYogqN1QqLqNNF8rRR7kQWSKWGyzhsHB0s+KLBV3iU/YTg==
-----END CERTIFICATE REQUEST-----
";

    fn csr_for(key: &KeyPair) -> (String, Vec<u8>) {
        let mut params =
            CertificateParams::new(vec!["a.example".to_string(), "b.example".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://td.example/ns/x".try_into().unwrap(),
        ));
        let csr = params.serialize_request(key).unwrap();
        (csr.pem().unwrap(), csr.der().to_vec())
    }

    fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
        KeyPair::generate_for(alg).unwrap()
    }

    #[test]
    fn other_san_types_are_reported_by_type_not_dropped() {
        let mut params = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([10, 0, 0, 1].into()));
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "ops@example.com".try_into().unwrap(),
        ));
        let csr = params
            .serialize_request(&key(&rcgen::PKCS_ECDSA_P256_SHA256))
            .unwrap();
        let csr = parse_csr(csr.der()).unwrap();
        assert_eq!(csr.dns_names, ["a.example"]);
        assert_eq!(csr.unsupported_names, ["iPAddress", "rfc822Name (e-mail)"]);
    }

    #[test]
    fn accepts_p256_ed25519_and_rsa_2048_in_pem_and_der() {
        let rsa =
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
        let cases = [
            (key(&rcgen::PKCS_ECDSA_P256_SHA256), LeafKeyKind::P256),
            (key(&rcgen::PKCS_ED25519), LeafKeyKind::Ed25519),
            (rsa, LeafKeyKind::Rsa { bits: 2048 }),
        ];
        for (kp, kind) in cases {
            let (pem, der) = csr_for(&kp);
            for input in [pem.as_bytes(), der.as_slice()] {
                let csr = parse_csr(input).unwrap();
                assert_eq!(csr.key_kind, kind);
                assert_eq!(csr.dns_names, ["a.example", "b.example"]);
                assert_eq!(csr.uris, ["spiffe://td.example/ns/x"]);
                assert_eq!(csr.spki_der, kp.subject_public_key_info());
                assert_eq!(
                    csr.key_fingerprint,
                    <[u8; 32]>::from(Sha256::digest(&csr.spki_der))
                );
            }
        }
    }

    #[test]
    fn rejects_rsa_1024_as_too_small() {
        assert_eq!(
            parse_csr(RSA_1024_CSR.as_bytes()),
            Err(CsrError::RsaTooSmall { bits: 1024 })
        );
    }

    #[test]
    fn rejects_p384_as_key_type_not_allowed() {
        let (_, der) = csr_for(&key(&rcgen::PKCS_ECDSA_P384_SHA384));
        match parse_csr(&der) {
            Err(CsrError::KeyTypeNotAllowed { found }) => assert!(found.contains("secp384r1")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn flipped_signature_byte_is_bad_signature() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
            let (_, mut der) = csr_for(&key(alg));
            let last = der.len() - 1;
            der[last] ^= 0x01;
            assert_eq!(parse_csr(&der), Err(CsrError::BadSignature));
        }
    }

    #[test]
    fn flipped_requested_name_is_bad_signature() {
        let (_, mut der) = csr_for(&key(&rcgen::PKCS_ED25519));
        let at = der.windows(9).position(|w| w == b"a.example").unwrap();
        der[at] = b'z';
        assert_eq!(parse_csr(&der), Err(CsrError::BadSignature));
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let (pem, der) = csr_for(&key(&rcgen::PKCS_ECDSA_P256_SHA256));
        for cut in 0..der.len() {
            assert!(parse_csr(&der[..cut]).is_err(), "DER cut at {cut}");
        }
        // Cutting only the final newline leaves a valid PEM.
        for cut in 0..pem.trim_end().len() {
            assert!(
                parse_csr(&pem.as_bytes()[..cut]).is_err(),
                "PEM cut at {cut}"
            );
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(matches!(parse_csr(&trailing), Err(CsrError::Malformed(_))));
        let wrong_label = pem.replace("CERTIFICATE REQUEST", "CERTIFICATE");
        assert!(matches!(
            parse_csr(wrong_label.as_bytes()),
            Err(CsrError::Malformed(_))
        ));
        assert_eq!(
            parse_csr(&vec![0u8; MAX_CSR_BYTES + 1]),
            Err(CsrError::TooLarge)
        );
    }

    #[test]
    fn significant_bits_ignores_leading_zeros() {
        assert_eq!(significant_bits(&[0, 0x80, 0]), 16);
        assert_eq!(significant_bits(&[0x01, 0]), 9);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }

    #[test]
    fn error_messages_are_usable_in_a_response() {
        let e = CsrError::KeyTypeNotAllowed {
            found: "EC secp384r1".into(),
        };
        assert_eq!(
            e.to_string(),
            "key type EC secp384r1 is not allowed; use Ed25519, ECDSA P-256 or RSA >= 2048 bits"
        );
        assert_eq!(e.kind(), "csr_key_type_not_allowed");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
            let _ = parse_csr(&bytes);
        }

        #[test]
        fn mutated_csrs_never_panic(flips in vec(any::<(usize, u8)>(), 1..8)) {
            let mut der = mutation_seed().to_vec();
            for (at, x) in flips {
                let i = at % der.len();
                der[i] ^= x;
            }
            let _ = parse_csr(&der);
        }
    }

    fn mutation_seed() -> &'static [u8] {
        static SEED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SEED.get_or_init(|| csr_for(&key(&rcgen::PKCS_ECDSA_P256_SHA256)).1)
    }
}
