//! Intermediate CA mode: the CA certificate an enterprise (offline) root signed for the
//! HSM-held CA key, installed by `credmint ca import`.

use super::{EventBody, KeyInfo, MAX_CERT};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// Most issuer certificates one import may carry (intermediates plus the root).
pub const MAX_CHAIN: usize = 8;

/// A CA certificate issued by another CA was installed for the CA key in force. The
/// appliance checked, before writing it, that the certificate certifies `key`, is a CA
/// certificate (basicConstraints CA:TRUE, keyCertSign) and chains through
/// `issuer_chain_der` to the self-signed root at its end; the auditor checks that `key` is
/// the CA key in force (FORMAT.md §7.2). Certificates stay opaque DER to the ledger crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaImported {
    /// The CA key the certificate is for: the CA key in force when it was imported.
    pub key: KeyInfo,
    /// DER of the imported CA certificate.
    pub ca_certificate_der: Vec<u8>,
    /// DER of its issuers, nearest first, ending with the self-signed root.
    pub issuer_chain_der: Vec<Vec<u8>>,
}

impl EventBody for CaImported {
    const TAG: u16 = 19;
    fn encode_body(&self, w: &mut Writer) {
        self.key.encode(w);
        w.bytes(&self.ca_certificate_der);
        w.count(self.issuer_chain_der.len());
        for c in &self.issuer_chain_der {
            w.bytes(c);
        }
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = KeyInfo::decode(r)?;
        let ca_certificate_der = r.bytes("ca_import.ca_certificate_der", MAX_CERT)?.to_vec();
        let n = r.count("ca_import.issuer_chain", MAX_CHAIN)?;
        let mut issuer_chain_der = Vec::with_capacity(n);
        for _ in 0..n {
            issuer_chain_der.push(r.bytes("ca_import.issuer_chain_der", MAX_CERT)?.to_vec());
        }
        Ok(CaImported {
            key,
            ca_certificate_der,
            issuer_chain_der,
        })
    }
}
