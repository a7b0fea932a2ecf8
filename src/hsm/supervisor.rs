//! Watching a serving appliance's HSM: health probes, outages and reconnection.
//!
//! While `serve` runs, [`run_health_probe`] probes the token every
//! [`HEALTH_PROBE_INTERVAL`] (`Hsm::probe`: token present, session logged in, every key in
//! use found). A failed probe, or a fault any call runs into (token gone, key gone, login
//! lost, module failure), starts an outage: from then on calls are refused at once with
//! `HsmError::Unavailable` (issuance answers 503, `/healthz` says degraded), and the
//! supervisor reconnects with bounded exponential backoff ([`RECONNECT_INITIAL`] doubling
//! to [`RECONNECT_MAX`]). Reconnecting opens new sessions, logs in, re-finds every key
//! (checking its public key is unchanged) and moves the handle epoch on, so no cached object
//! handle is used again; when that fails on the current initialisation the module is
//! finalised and initialised again (what SoftHSM needs to see a token directory that came
//! back). Once connected, subscribers of [`Hsm::recoveries`] are told (the status cache
//! then signs whatever it could not sign during the outage).
//!
//! Outside `serve` (init, CLI verbs) nothing supervises the HSM and errors are returned as
//! they happen, unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::error::HsmError;
use super::pool::Hsm;

/// How often [`run_health_probe`] probes a healthy HSM.
pub const HEALTH_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// Delay before the first reconnection attempt after a fault.
pub const RECONNECT_INITIAL: Duration = Duration::from_millis(500);
/// Longest delay between reconnection attempts (the delay doubles up to this).
pub const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// The outcome of the last liveness probe or reconnection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthProbe {
    pub at: Instant,
    /// `Err(kind)` with the [`HsmError::kind`] of the fault when the HSM is unusable.
    pub result: Result<(), &'static str>,
    /// When the next probe or attempt is due.
    pub next_within: Duration,
}

impl HealthProbe {
    /// True when no probe or attempt finished for two probe intervals past the one due
    /// (the prober is stuck inside the HSM).
    pub fn is_stale(&self) -> bool {
        self.at.elapsed() > self.next_within + HEALTH_PROBE_INTERVAL * 2
    }
}

struct Outage {
    cause: &'static str,
    since: Instant,
    attempts: u32,
    backoff: Duration,
    next_attempt: Instant,
}

/// Outage state of one `Hsm`.
pub(super) struct Link {
    supervised: AtomicBool,
    outage: Mutex<Option<Outage>>,
    health: Mutex<Option<HealthProbe>>,
    wake: Notify,
    recoveries: watch::Sender<u64>,
}

impl Link {
    pub(super) fn new() -> Link {
        Link {
            supervised: AtomicBool::new(false),
            outage: Mutex::new(None),
            health: Mutex::new(None),
            wake: Notify::new(),
            recoveries: watch::Sender::new(0),
        }
    }

    pub(super) fn record(&self, result: Result<(), &'static str>, next_within: Duration) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Some(HealthProbe {
            at: Instant::now(),
            result,
            next_within,
        });
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.outage.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(Unavailable)` during an outage: no PKCS#11 call is made.
    pub(super) fn refuse_if_down(&self) -> Result<(), HsmError> {
        match &*self.outage() {
            None => Ok(()),
            Some(o) => Err(HsmError::Unavailable {
                cause: o.cause,
                down_secs: o.since.elapsed().as_secs(),
                retry_after_secs: o
                    .next_attempt
                    .saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1),
            }),
        }
    }

    /// A call or probe ran into `error`, a fault: starts an outage (if supervised and
    /// none is running) and wakes the supervisor.
    pub(super) fn fault(&self, error: &HsmError) {
        if !self.supervised.load(Ordering::Acquire) || matches!(error, HsmError::Unavailable { .. })
        {
            return;
        }
        let mut outage = self.outage();
        if outage.is_some() {
            return;
        }
        let now = Instant::now();
        *outage = Some(Outage {
            cause: error.kind(),
            since: now,
            attempts: 0,
            backoff: RECONNECT_INITIAL,
            next_attempt: now + RECONNECT_INITIAL,
        });
        drop(outage);
        tracing::error!(kind = error.kind(), %error,
            "HSM fault: refusing signatures and reconnecting");
        self.record(Err(error.kind()), RECONNECT_INITIAL);
        self.wake.notify_one();
    }

    /// `None` when connected; otherwise how long until the next reconnection attempt.
    fn attempt_due(&self) -> Option<Duration> {
        self.outage()
            .as_ref()
            .map(|o| o.next_attempt.saturating_duration_since(Instant::now()))
    }

    fn attempt_failed(&self, error: &HsmError) {
        let mut outage = self.outage();
        let Some(o) = outage.as_mut() else { return };
        o.attempts += 1;
        o.cause = error.cause();
        o.backoff = (o.backoff * 2).min(RECONNECT_MAX);
        o.next_attempt = Instant::now() + o.backoff;
        let (attempts, next) = (o.attempts, o.backoff);
        let down = o.since.elapsed();
        drop(outage);
        tracing::warn!(kind = error.cause(), %error, attempts, ?next, ?down,
            "HSM reconnection failed; will retry");
        self.record(Err(error.cause()), next);
    }

    fn recovered(&self) {
        let Some(o) = self.outage().take() else {
            return;
        };
        tracing::info!(attempts = o.attempts + 1, outage = ?o.since.elapsed(), cause = o.cause,
            "HSM reconnected: signing again");
        self.record(Ok(()), HEALTH_PROBE_INTERVAL);
        self.recoveries.send_modify(|n| *n += 1);
    }
}

impl Hsm {
    /// The last recorded probe or reconnection attempt, if any.
    pub fn last_probe(&self) -> Option<HealthProbe> {
        *self.link.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(HsmError::Unavailable)` during an outage (refused before any PKCS#11 call).
    pub fn unavailable(&self) -> Option<HsmError> {
        self.link.refuse_if_down().err()
    }

    /// Reports a fault found outside a pooled call (a key that is no longer found).
    pub(crate) fn report_fault(&self, error: &HsmError) {
        self.metrics().error(error.kind());
        if error.is_fault() {
            self.link.fault(error);
        }
    }

    /// Counts reconnections; changes each time the HSM is usable again after an outage.
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.link.recoveries.subscribe()
    }
}

/// Supervises `hsm` until `stop` flips: probes every `interval` while connected, and
/// reconnects with backoff during an outage (blocking PKCS#11 work runs on the blocking
/// pool). Health checks therefore cost no HSM session per request.
pub async fn run_health_probe(
    hsm: Arc<Hsm>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    hsm.link.supervised.store(true, Ordering::Release);
    loop {
        let pause = match hsm.link.attempt_due() {
            Some(wait) if wait.is_zero() => {
                let h = hsm.clone();
                match tokio::task::spawn_blocking(move || h.reconnect()).await {
                    Ok(Ok(())) => hsm.link.recovered(),
                    Ok(Err(e)) => hsm.link.attempt_failed(&e),
                    Err(_) => hsm
                        .link
                        .attempt_failed(&HsmError::Malformed("reconnection panicked".into())),
                }
                continue;
            }
            Some(wait) => wait,
            None => {
                let h = hsm.clone();
                if tokio::task::spawn_blocking(move || h.probe())
                    .await
                    .is_err()
                {
                    hsm.link.record(Err("probe_panicked"), interval);
                }
                if hsm.link.attempt_due().is_some() {
                    continue;
                }
                interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = hsm.link.wake.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_gone() -> HsmError {
        HsmError::KeyNotFound { label: "ca".into() }
    }

    #[test]
    fn faults_start_an_outage_only_when_supervised() {
        let link = Link::new();
        link.fault(&key_gone());
        assert!(
            link.refuse_if_down().is_ok(),
            "init and CLI verbs report errors as they are"
        );
        link.supervised.store(true, Ordering::Release);
        link.fault(&key_gone());
        match link.refuse_if_down() {
            Err(HsmError::Unavailable { cause, .. }) => assert_eq!(cause, "key_not_found"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            link.health.lock().unwrap().unwrap().result,
            Err("key_not_found")
        );
    }

    #[test]
    fn reconnection_backoff_doubles_from_half_a_second_to_ten_and_recovery_is_announced() {
        let link = Link::new();
        link.supervised.store(true, Ordering::Release);
        let recoveries = link.recoveries.subscribe();
        link.fault(&key_gone());
        assert!(link.attempt_due().unwrap() <= RECONNECT_INITIAL);
        let mut delays = Vec::new();
        for _ in 0..7 {
            link.attempt_failed(&HsmError::TokenNotFound { label: "t".into() });
            delays.push(link.outage().as_ref().unwrap().backoff.as_millis());
        }
        assert_eq!(delays, [1000, 2000, 4000, 8000, 10000, 10000, 10000]);
        let health = link.health.lock().unwrap().unwrap();
        assert_eq!(health.result, Err("token_not_found"));
        assert!(!health.is_stale(), "an attempt is due within the backoff");
        link.recovered();
        assert!(link.refuse_if_down().is_ok());
        assert!(recoveries.has_changed().unwrap());
        assert_eq!(link.health.lock().unwrap().unwrap().result, Ok(()));
    }
}
