//! Misuse and anomaly signals: counters, rate limiting, and the `anomaly-flagged` ledger
//! events (actor `system:signals`). Signals never block or fail the request that caused
//! them: evaluation is in memory, and the ledger write runs in its own task.
//!
//! - Reuse: each dead credential gets at most one `reuse-detected` event per window;
//!   repeats in between are counted and folded into the next event's `count`.
//! - After every issuance ([`after_issuance`]): dormant-to-active, volume spike and new
//!   source network, each at most once per integration and kind per `cooldown_secs`.
//! - On an approved increase of authority: privilege expansion ([`privilege_expansion`]).
//!
//! Baselines (issuance times, known networks) live in memory: after a restart each
//! integration's first network is its baseline again, and volume is judged only once an
//! integration has been observed for `baseline_window_secs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use credmint_ledger::event::{AnomalyFlagged, AnomalyKind, ReuseKind};
use serde::Deserialize;

use crate::config::ConfigError;
use crate::sequencer::{Actor, Command, Issued, Op};

/// Seconds during which repeats of the same credential are folded into one event.
const WINDOW_SECS: u64 = 60;
/// Most distinct credentials tracked; beyond it the oldest windows are forgotten.
const MAX_TRACKED: usize = 10_000;
/// Most networks remembered per integration.
const MAX_NETWORKS: usize = 256;
/// Most issuance times kept per integration (bounds memory under a flood).
const MAX_TIMES: usize = 100_000;

/// `[signals]` in the config file. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsConfig {
    /// An integration with no issuance for this many days (since its last issuance, or its
    /// registration if it never had one) is dormant; its next issuance is a
    /// dormant-to-active signal (default 30).
    #[serde(default = "default_dormant_days")]
    pub dormant_after_days: u64,
    /// Window whose issuance count is compared with the baseline (default 60 s).
    #[serde(default = "default_volume_window")]
    pub volume_window_secs: u64,
    /// Window before it that gives the integration's own baseline rate (default 3600 s).
    #[serde(default = "default_baseline_window")]
    pub baseline_window_secs: u64,
    /// A volume spike is more than this many times the baseline count expected in one
    /// volume window (at least 1) ... (default 10)
    #[serde(default = "default_volume_factor")]
    pub volume_factor: u64,
    /// ... and at least this many issuances in the volume window (default 20).
    #[serde(default = "default_volume_min_count")]
    pub volume_min_count: u64,
    /// At most one event per integration and kind in this many seconds (default 300);
    /// privilege-expansion events are never suppressed.
    #[serde(default = "default_cooldown")]
    pub cooldown_secs: u64,
    /// Suspend a privileged integration automatically on a volume spike (default false).
    /// The suspension is an `integration-changed` (Suspended) by `system:signals` in the
    /// same ledger batch as the signal, whose `auto_suspended` is then true.
    #[serde(default)]
    pub auto_suspend_privileged_on_volume: bool,
}

fn default_dormant_days() -> u64 {
    30
}
fn default_volume_window() -> u64 {
    60
}
fn default_baseline_window() -> u64 {
    3600
}
fn default_volume_factor() -> u64 {
    10
}
fn default_volume_min_count() -> u64 {
    20
}
fn default_cooldown() -> u64 {
    300
}

impl Default for SignalsConfig {
    fn default() -> Self {
        SignalsConfig {
            dormant_after_days: default_dormant_days(),
            volume_window_secs: default_volume_window(),
            baseline_window_secs: default_baseline_window(),
            volume_factor: default_volume_factor(),
            volume_min_count: default_volume_min_count(),
            cooldown_secs: default_cooldown(),
            auto_suspend_privileged_on_volume: false,
        }
    }
}

impl SignalsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.dormant_after_days == 0 {
            return invalid("signals.dormant_after_days", "must be at least 1");
        }
        if self.volume_window_secs == 0 {
            return invalid("signals.volume_window_secs", "must be at least 1");
        }
        if self.baseline_window_secs <= self.volume_window_secs
            || self.baseline_window_secs > 30 * 86_400
        {
            return invalid(
                "signals.baseline_window_secs",
                "must be above volume_window_secs and at most 30 days",
            );
        }
        if self.volume_factor == 0 {
            return invalid("signals.volume_factor", "must be at least 1");
        }
        if self.volume_min_count == 0 {
            return invalid("signals.volume_min_count", "must be at least 1");
        }
        Ok(())
    }
}

/// One signal decided, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: AnomalyKind,
    pub detail: String,
}

/// What one issuance looked like, for [`Signals::observe`].
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub integration: &'a str,
    pub now: u64,
    /// Client address of the request, if known.
    pub peer: Option<IpAddr>,
    /// When the integration last issued before this one (or registered), from the
    /// projection; used when this process has not yet seen the integration.
    pub previous_activity: Option<u64>,
}

#[derive(Default)]
struct Traffic {
    first_seen: u64,
    last_issuance: u64,
    times: VecDeque<u64>,
    networks: HashSet<String>,
    last_fired: HashMap<u8, u64>,
}

/// Counters and in-memory baselines; one per appliance, in `AppState`.
#[derive(Default)]
pub struct Signals {
    reuse_total: AtomicU64,
    windows: Mutex<HashMap<String, (u64, u64)>>,
    /// Indexed by `AnomalyKind::to_u8() - 1`.
    fired: [AtomicU64; 4],
    suppressed: [AtomicU64; 4],
    auto_suspensions: AtomicU64,
    write_failures: AtomicU64,
    traffic: Mutex<HashMap<String, Traffic>>,
}

/// The /24 (IPv4) or /64 (IPv6) a client address belongs to.
pub fn network_of(ip: IpAddr) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

pub fn kind_name(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::DormantToActive => "dormant_to_active",
        AnomalyKind::VolumeSpike => "volume_spike",
        AnomalyKind::NewSourceNetwork => "new_source_network",
        AnomalyKind::PrivilegeExpansion => "privilege_expansion",
    }
}

pub fn reuse_kind_name(kind: ReuseKind) -> &'static str {
    match kind {
        ReuseKind::EnrollmentToken => "enrollment_token_reused",
        ReuseKind::RevokedCertificate => "revoked_certificate_presented",
        ReuseKind::ExpiredCertificate => "expired_certificate_presented",
    }
}

/// Every kind, in the order of the counters (`AnomalyKind::to_u8() - 1`).
pub const KINDS: [AnomalyKind; 4] = [
    AnomalyKind::DormantToActive,
    AnomalyKind::VolumeSpike,
    AnomalyKind::NewSourceNetwork,
    AnomalyKind::PrivilegeExpansion,
];

fn slot(kind: AnomalyKind) -> usize {
    usize::from(kind.to_u8()) - 1
}

impl Signals {
    /// Counts one presentation of a dead credential. Returns `Some(count)` when a ledger
    /// event should be written now (covering `count` presentations), `None` when folded.
    pub fn reuse(&self, credential: &str, now: u64) -> Option<u64> {
        self.reuse_total.fetch_add(1, Ordering::Relaxed);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| now.saturating_sub(*start) < WINDOW_SECS);
        }
        let entry = windows.entry(credential.to_string()).or_insert((0, 0));
        entry.1 += 1;
        if entry.0 == 0 || now.saturating_sub(entry.0) >= WINDOW_SECS {
            let count = entry.1;
            *entry = (now.max(1), 0);
            Some(count)
        } else {
            None
        }
    }

    pub fn reuse_total(&self) -> u64 {
        self.reuse_total.load(Ordering::Relaxed)
    }

    /// Signals of `kind` decided so far (written or being written).
    pub fn fired(&self, kind: AnomalyKind) -> u64 {
        self.fired[slot(kind)].load(Ordering::Relaxed)
    }

    /// Records one issuance and returns the signals it raises, already rate-limited and
    /// counted. Pure apart from the in-memory baselines.
    pub fn observe(&self, cfg: &SignalsConfig, obs: Observation<'_>) -> Vec<Finding> {
        let now = obs.now;
        let mut all = self.traffic.lock().unwrap_or_else(|p| p.into_inner());
        let t = all.entry(obs.integration.to_string()).or_default();
        let mut findings = Vec::new();

        // Dormant to active: the gap since the previous issuance this process saw, or
        // the projection's when it saw none.
        let previous = if t.first_seen == 0 {
            obs.previous_activity
        } else {
            Some(t.last_issuance)
        };
        if t.first_seen == 0 {
            t.first_seen = now.max(1);
        }
        let dormant = cfg.dormant_after_days * 86_400;
        if let Some(prev) = previous.filter(|p| *p > 0 && now.saturating_sub(*p) > dormant) {
            findings.push(Finding {
                kind: AnomalyKind::DormantToActive,
                detail: format!(
                    "first issuance after {} days without any",
                    now.saturating_sub(prev) / 86_400
                ),
            });
        }
        t.last_issuance = now;

        // Volume: the recent window against the integration's own baseline.
        t.times.push_back(now);
        while t.times.len() > MAX_TIMES
            || t.times
                .front()
                .is_some_and(|x| now.saturating_sub(*x) >= cfg.baseline_window_secs)
        {
            t.times.pop_front();
        }
        if now.saturating_sub(t.first_seen) >= cfg.baseline_window_secs {
            let recent_from = now.saturating_sub(cfg.volume_window_secs);
            let recent = t.times.iter().filter(|x| **x > recent_from).count() as u64;
            let baseline = t.times.len() as u64 - recent;
            // Issuances the baseline predicts for one volume window, rounded up, at least 1.
            let span = cfg.baseline_window_secs - cfg.volume_window_secs;
            let expected = (baseline * cfg.volume_window_secs).div_ceil(span).max(1);
            if recent >= cfg.volume_min_count && recent > cfg.volume_factor * expected {
                findings.push(Finding {
                    kind: AnomalyKind::VolumeSpike,
                    detail: format!(
                        "{recent} issuances in {}s; baseline predicts {expected}",
                        cfg.volume_window_secs
                    ),
                });
            }
        }

        // Source network: the first one is the baseline.
        if let Some(ip) = obs.peer {
            let net = network_of(ip);
            if !t.networks.contains(&net) {
                let first = t.networks.is_empty();
                if t.networks.len() < MAX_NETWORKS {
                    t.networks.insert(net.clone());
                }
                if !first {
                    findings.push(Finding {
                        kind: AnomalyKind::NewSourceNetwork,
                        detail: format!("request from {ip} in new network {net}"),
                    });
                }
            }
        }

        findings.retain(|f| {
            let last = t.last_fired.entry(f.kind.to_u8()).or_insert(0);
            if *last != 0 && now.saturating_sub(*last) < cfg.cooldown_secs {
                self.suppressed[slot(f.kind)].fetch_add(1, Ordering::Relaxed);
                false
            } else {
                *last = now.max(1);
                self.fired[slot(f.kind)].fetch_add(1, Ordering::Relaxed);
                true
            }
        });
        findings
    }

    /// Every counter, for the metrics registry (`crate::metrics`).
    pub fn counts(&self) -> SignalCounts {
        let by_kind =
            |counters: &[AtomicU64; 4]| KINDS.map(|k| counters[slot(k)].load(Ordering::Relaxed));
        SignalCounts {
            fired: by_kind(&self.fired),
            suppressed: by_kind(&self.suppressed),
            auto_suspensions: self.auto_suspensions.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            reuse: self.reuse_total(),
        }
    }
}

/// A reading of the signal counters; `fired` and `suppressed` are in [`KINDS`] order.
#[derive(Debug, Clone, Copy)]
pub struct SignalCounts {
    pub fired: [u64; 4],
    pub suppressed: [u64; 4],
    pub auto_suspensions: u64,
    pub write_failures: u64,
    pub reuse: u64,
}

tokio::task_local! {
    /// Client address of the request being handled (set by the API layer).
    static PEER: IpAddr;
}

/// Runs `f` with `peer` as the request's client address, for [`after_issuance`].
pub async fn with_peer<F: std::future::Future>(peer: Option<IpAddr>, f: F) -> F::Output {
    match peer {
        Some(ip) => PEER.scope(ip, f).await,
        None => f.await,
    }
}

/// The client address of the request being handled, if the API layer set one.
pub fn current_peer() -> Option<IpAddr> {
    PEER.try_with(|p| *p).ok()
}

/// After a committed issuance (run by the sequencer, through its `AfterCommit` hook):
/// the signals it raises, as commands to sequence next. Never fails and never waits.
pub fn after_issuance(signals: &Signals, cfg: &SignalsConfig, issued: Issued<'_>) -> Vec<Command> {
    let findings = signals.observe(
        cfg,
        Observation {
            integration: issued.integration,
            now: issued.now,
            peer: issued.peer,
            previous_activity: issued.previous_activity,
        },
    );
    findings
        .into_iter()
        .map(|finding| {
            tracing::warn!(integration = %issued.integration, kind = kind_name(finding.kind), detail = %finding.detail, "anomaly signal");
            let auto_suspend =
                finding.kind == AnomalyKind::VolumeSpike && cfg.auto_suspend_privileged_on_volume;
            Command::new(
                Actor::System("signals"),
                Op::Anomaly {
                    flagged: AnomalyFlagged {
                        integration: issued.integration.to_string(),
                        kind: finding.kind,
                        detail: finding.detail,
                        auto_suspended: false,
                    },
                    auto_suspend,
                },
            )
        })
        .collect()
}

impl Signals {
    /// Counts an anomaly event the sequencer committed. Observed findings are counted by
    /// [`Signals::observe`]; privilege expansion is decided by the approval itself.
    pub fn committed(&self, kind: AnomalyKind, auto_suspended: bool) {
        if kind == AnomalyKind::PrivilegeExpansion {
            self.fired[slot(kind)].fetch_add(1, Ordering::Relaxed);
        }
        if auto_suspended {
            self.auto_suspensions.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("privileged integration suspended automatically");
        }
    }

    /// Counts a signal event that could not be written.
    pub fn write_failed(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_a_window_are_folded() {
        let s = Signals::default();
        assert_eq!(s.reuse("a", 100), Some(1));
        assert_eq!(s.reuse("a", 110), None);
        assert_eq!(s.reuse("a", 120), None);
        assert_eq!(s.reuse("b", 120), Some(1));
        assert_eq!(s.reuse("a", 161), Some(3));
        assert_eq!(s.reuse_total(), 5);
    }

    fn obs(now: u64, peer: &str, previous: Option<u64>) -> Observation<'static> {
        Observation {
            integration: "ci",
            now,
            peer: Some(peer.parse().unwrap()),
            previous_activity: previous,
        }
    }

    fn kinds(f: &[Finding]) -> Vec<AnomalyKind> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn steady_traffic_raises_nothing_and_a_burst_raises_one_spike() {
        let s = Signals::default();
        let cfg = SignalsConfig::default();
        let start = 1_000_000;
        // Two hours at 10 per minute: a steady baseline.
        for minute in 0..120 {
            for i in 0..10 {
                let f = s.observe(&cfg, obs(start + minute * 60 + i, "10.0.0.7", None));
                assert!(f.is_empty(), "minute {minute}: {f:?}");
            }
        }
        // 200 in the next minute is 20x the baseline.
        let now = start + 120 * 60;
        let mut spikes = 0;
        for i in 0..200 {
            spikes += s
                .observe(&cfg, obs(now + i / 4, "10.0.0.7", None))
                .iter()
                .filter(|f| f.kind == AnomalyKind::VolumeSpike)
                .count();
        }
        assert_eq!(spikes, 1, "rate-limited to one event per cooldown");
        assert!(s.suppressed[slot(AnomalyKind::VolumeSpike)].load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn first_network_is_the_baseline_and_a_new_one_is_flagged_once() {
        let s = Signals::default();
        let cfg = SignalsConfig::default();
        assert!(s.observe(&cfg, obs(100, "10.1.2.3", None)).is_empty());
        assert!(s.observe(&cfg, obs(101, "10.1.2.200", None)).is_empty());
        assert_eq!(
            kinds(&s.observe(&cfg, obs(102, "10.1.3.1", None))),
            vec![AnomalyKind::NewSourceNetwork]
        );
        assert!(s.observe(&cfg, obs(103, "10.1.3.9", None)).is_empty());
        assert_eq!(
            network_of("2001:db8:1:2:3::4".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            network_of("::ffff:10.9.8.7".parse().unwrap()),
            "10.9.8.0/24"
        );
    }

    #[test]
    fn config_sections_are_optional_strict_and_named_when_invalid() {
        use std::path::Path;
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-config/credmint.toml"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let load = |extra: &str| {
            let p = dir.path().join("c.toml");
            std::fs::write(&p, format!("{base}\n{extra}")).unwrap();
            crate::config::Config::load(&p)
        };
        let cfg = load("").unwrap();
        assert_eq!(cfg.signals.volume_factor, 10);
        assert_eq!(cfg.governance.privileged_review_max_days, 90);
        let cfg =
            load("[signals]\ndormant_after_days = 7\n[governance]\nreview_warning_days = 3\n")
                .unwrap();
        assert_eq!(cfg.signals.dormant_after_days, 7);
        assert_eq!(cfg.signals.volume_min_count, 20);
        assert_eq!(cfg.governance.review_warning_days, 3);
        let err = load("[signals]\nvolume_factor = 0\n").unwrap_err();
        assert!(err.to_string().contains("signals.volume_factor"), "{err}");
        let err = load("[signals]\nvolume_facter = 3\n").unwrap_err();
        assert!(err.to_string().contains("volume_facter"), "{err}");
        let err = load("[governance]\nprivileged_review_max_days = 400\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("governance.privileged_review_max_days"),
            "{err}"
        );
    }

    #[test]
    fn dormant_to_active_uses_the_projection_after_a_restart() {
        let s = Signals::default();
        let cfg = SignalsConfig::default();
        let day = 86_400;
        // Previous issuance 31 days ago, known only from the projection.
        assert_eq!(
            kinds(&s.observe(&cfg, obs(100 * day, "10.0.0.1", Some(69 * day)))),
            vec![AnomalyKind::DormantToActive]
        );
        assert!(s
            .observe(&cfg, obs(100 * day + 5, "10.0.0.1", None))
            .is_empty());
        // Then 29 days idle: not dormant.
        assert!(s.observe(&cfg, obs(129 * day, "10.0.0.1", None)).is_empty());
        assert_eq!(
            kinds(&s.observe(&cfg, obs(160 * day, "10.0.0.1", None))),
            vec![AnomalyKind::DormantToActive]
        );
    }
}
