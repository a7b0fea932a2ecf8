//! `credmint bench issue`: certificates issued per second end to end over HTTPS against a
//! running appliance (mTLS renewals: policy, HSM signature, durable ledger append each).

use std::sync::Arc;
use std::time::Duration;

use crate::wire::{CertRequest, EnrollmentRequest, EnrollmentToken};

use super::load::{drive, throwaway_integration, LoadFigure};
use crate::client::{build, ClientError, OperatorClient};

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(e.to_string())
}

/// Registers a throwaway integration, enrolls one workload, then renews concurrently.
pub async fn issue(
    operator: &OperatorClient,
    ca_pem: &[u8],
    concurrency: usize,
    duration: Duration,
) -> Result<LoadFigure, ClientError> {
    let (name, registration) = throwaway_integration("bench", "throughput benchmark");
    operator
        .post("/v1/admin/integrations", &registration)
        .await?;
    let enrollment: EnrollmentToken = operator
        .post_as(
            &format!("/v1/admin/integrations/{name}/enrollments"),
            &EnrollmentRequest::default(),
        )
        .await?;
    let token = enrollment.token;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(other)?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .map_err(other)?
        .pem()
        .map_err(other)?;
    let anon = build(ca_pem, None)?;
    let resp = anon
        .post(format!("{}/v1/enroll", operator.base))
        .bearer_auth(&token)
        .json(&CertRequest {
            csr: csr.clone(),
            ttl_secs: None,
        })
        .send()
        .await
        .map_err(other)?;
    if !resp.status().is_success() {
        return Err(ClientError::Refused {
            status: resp.status().as_u16(),
            message: resp.text().await.unwrap_or_default(),
        });
    }
    let chain = resp.text().await.map_err(other)?;
    let identity = format!("{chain}{}", key.serialize_pem());
    let body = Arc::new(CertRequest {
        csr: csr.clone(),
        ttl_secs: None,
    });
    let url = Arc::new(format!("{}/v1/renew", operator.base));
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(build(ca_pem, Some(identity.as_bytes()))?);
    }
    let what = "certificates issued over HTTPS (renewal, durable ledger)";
    Ok(drive(what, clients, duration, move |client| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let ok = match client.post(url.as_str()).json(&*body).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            };
            (client, ok)
        }
    })
    .await)
}
