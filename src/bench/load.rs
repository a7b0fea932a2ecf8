//! The load loop `bench issue` and `bench acme` share: one task per session, each
//! repeating its step until the deadline, counting successes with their latencies.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One end-to-end throughput figure.
#[derive(Debug, Serialize)]
pub struct LoadFigure {
    pub what: &'static str,
    pub concurrency: usize,
    pub seconds: f64,
    pub issued: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl std::fmt::Display for LoadFigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {:.0}/s with {} connections; {} issued, {} errors in {:.1}s; latency p50 {:.1} ms, p99 {:.1} ms",
            self.what, self.per_second, self.concurrency, self.issued, self.errors, self.seconds, self.p50_ms, self.p99_ms
        )
    }
}

/// Runs `step` on every session until `duration` has passed. A step takes its session
/// and gives it back with whether it succeeded.
pub async fn drive<S, F, Fut>(
    what: &'static str,
    sessions: Vec<S>,
    duration: Duration,
    step: F,
) -> LoadFigure
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (S, bool)> + Send,
{
    let concurrency = sessions.len();
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut session| {
            let step = step.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (back, success) = step(session).await;
                    session = back;
                    if success {
                        ok.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((ok, failed)) = t.await {
            latencies.extend(ok);
            errors += failed;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let issued = latencies.len() as u64;
    LoadFigure {
        what,
        concurrency,
        seconds,
        issued,
        errors,
        per_second: issued as f64 / seconds,
        p50_ms: percentile(&mut latencies, 0.50),
        p99_ms: percentile(&mut latencies, 0.99),
    }
}

/// A throwaway routine integration for a benchmark run, named `<prefix>-<pid>-<random>`
/// (returned with its registration; the caller may add DNS names or policy).
pub fn throwaway_integration(prefix: &str, purpose: &str) -> (String, crate::wire::Registration) {
    let name = format!("{prefix}-{}-{}", std::process::id(), rand::random::<u16>());
    let review_by = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let registration = crate::wire::Registration {
        name: Some(name.clone()),
        business_owner: Some("bench".into()),
        technical_owner: Some("bench".into()),
        purpose: Some(purpose.into()),
        environment: Some("bench".into()),
        scopes: Some(vec!["bench".into()]),
        privilege_class: Some("routine".into()),
        max_ttl_secs: Some(900),
        review_by: Some(review_by.date().to_string()),
        approval_ref: Some("bench".into()),
        ..crate::wire::Registration::default()
    };
    (name, registration)
}

/// The `p` quantile (0..=1) of `samples` (sorted in place); 0 when there are none.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1));
    samples.get(i).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_successes_and_failures_per_session() {
        let fig = drive(
            "t",
            vec![0u32, 1],
            Duration::from_millis(50),
            |s| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                (s, s == 0)
            },
        )
        .await;
        assert_eq!(fig.concurrency, 2);
        assert!(fig.issued > 0 && fig.errors > 0, "{fig:?}");
        assert!(fig.p50_ms >= 1.0 && fig.p99_ms >= fig.p50_ms, "{fig:?}");
    }
}
