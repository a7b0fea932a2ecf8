//! rustls server configuration: TLS 1.3 and 1.2 only, aws-lc-rs provider.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::UnixTime;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server certificate PEM: {0}")]
    Pem(String),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Server config that asks for (but does not require) a client certificate chaining to
/// one of `client_roots_der`: public routes work without one, operator and workload
/// routes look the presented certificate up in the ledger projection.
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    client_roots_der: &[Vec<u8>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for der in client_roots_der {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let webpki = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Pem(format!("client verifier: {e}")))?;
    let verifier = Arc::new(ExpiredStillIdentified { inner: webpki });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Lets a client whose certificate has *expired* (but otherwise chains to the CA) finish
/// the handshake, so the application can refuse it with a clear 401 and record the
/// attempt as a reuse signal; with plain WebPKI such a client would only see a TLS alert
/// and the appliance would learn nothing. Every route re-checks validity against the
/// ledger, so an expired certificate never authorises anything.
#[derive(Debug)]
struct ExpiredStillIdentified {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ExpiredStillIdentified {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            )) => {
                // Re-run the full chain check at the last second the certificate was valid:
                // only the expiry is forgiven, never a bad signature or a foreign issuer.
                let not_after = x509_parser::parse_x509_certificate(end_entity)
                    .map(|(_, c)| c.validity().not_after.timestamp())
                    .map_err(|_| {
                        rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                    })?;
                let at = UnixTime::since_unix_epoch(Duration::from_secs(
                    u64::try_from(not_after).unwrap_or(0),
                ));
                self.inner.verify_client_cert(end_entity, intermediates, at)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
