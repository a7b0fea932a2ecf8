//! `credmint bench issue`: certificates issued per second end to end over HTTPS against a
//! running appliance (mTLS renewals: policy, HSM signature, durable ledger append each).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::wire::{CertRequest, EnrollmentRequest, EnrollmentToken, Registration};
use serde::Serialize;

use crate::client::{build, ClientError, OperatorClient};

#[derive(Debug, Serialize)]
pub struct IssueFigure {
    pub concurrency: usize,
    pub seconds: f64,
    pub issued: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl std::fmt::Display for IssueFigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificates issued over HTTPS (renewal, durable ledger): {:.0}/s with {} connections; {} issued, {} errors in {:.1}s; latency p50 {:.1} ms, p99 {:.1} ms",
            self.per_second, self.concurrency, self.issued, self.errors, self.seconds, self.p50_ms, self.p99_ms
        )
    }
}

fn other(e: impl std::fmt::Display) -> ClientError {
    ClientError::Tls(e.to_string())
}

/// Registers a throwaway integration, enrolls one workload, then renews concurrently.
pub async fn issue(
    operator: &OperatorClient,
    ca_pem: &[u8],
    concurrency: usize,
    duration: Duration,
) -> Result<IssueFigure, ClientError> {
    let name = format!("bench-{}-{}", std::process::id(), rand::random::<u16>());
    let review_by = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let registration = Registration {
        name: Some(name.clone()),
        business_owner: Some("bench".into()),
        technical_owner: Some("bench".into()),
        purpose: Some("throughput benchmark".into()),
        environment: Some("bench".into()),
        scopes: Some(vec!["bench".into()]),
        privilege_class: Some("routine".into()),
        max_ttl_secs: Some(900),
        review_by: Some(review_by.date().to_string()),
        approval_ref: Some("bench".into()),
        ..Registration::default()
    };
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
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = build(ca_pem, Some(identity.as_bytes()))?;
        let (body, url, issued, errors, latencies) = (
            body.clone(),
            url.clone(),
            issued.clone(),
            errors.clone(),
            latencies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.post(url.as_str()).json(&*body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        issued.fetch_add(1, Ordering::Relaxed);
                        mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let (p50_ms, p99_ms) = (percentile(&mut lat, 0.50), percentile(&mut lat, 0.99));
    let issued = issued.load(Ordering::Relaxed);
    Ok(IssueFigure {
        concurrency,
        seconds,
        issued,
        errors: errors.load(Ordering::Relaxed),
        per_second: issued as f64 / seconds,
        p50_ms,
        p99_ms,
    })
}

/// The `p` quantile (0..=1) of `samples` (sorted in place); 0 when there are none.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1));
    samples.get(i).copied().unwrap_or(0.0)
}
