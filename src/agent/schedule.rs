//! When to renew and how long to wait after a failure: pure arithmetic on milliseconds,
//! with the randomness passed in so it can be tested.

use super::config::RenewConfig;

/// The renewal point of a certificate obtained at `obtained_ms` and valid until
/// `not_after_ms`: `at_fraction` of the way through, moved by `jitter` (in -1..=1) times
/// `jitter_fraction` of the lifetime, and never after the certificate's end. The lifetime
/// is counted from when the agent got it, not from notBefore, which the appliance
/// backdates 30 s for clock skew (counting from there would renew a 60 s certificate
/// after 20 s).
pub fn renew_at(obtained_ms: u64, not_after_ms: u64, cfg: &RenewConfig, jitter: f64) -> u64 {
    let lifetime = not_after_ms.saturating_sub(obtained_ms) as f64;
    let fraction =
        (cfg.at_fraction + jitter.clamp(-1.0, 1.0) * cfg.jitter_fraction).clamp(0.0, 1.0);
    let at = obtained_ms.saturating_add((lifetime * fraction) as u64);
    at.min(not_after_ms)
}

/// The delay before retry number `failures` (1 for the first retry): exponential from
/// `backoff_initial_ms`, capped at `backoff_max_secs`, scaled by `spread` (in 0.5..=1,
/// "equal jitter") so that agents cut off by the same outage do not return in step.
pub fn backoff_ms(failures: u32, cfg: &RenewConfig, spread: f64) -> u64 {
    let cap = cfg.backoff_max_secs.saturating_mul(1000);
    let exp = failures.saturating_sub(1).min(32);
    let raw = cfg.backoff_initial_ms.saturating_mul(1u64 << exp).min(cap);
    ((raw as f64) * spread.clamp(0.5, 1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_renews_two_thirds_through_from_receipt() {
        let cfg = RenewConfig::default();
        // Obtained at t=100 s, valid until t=160 s: renew at t=140 s.
        assert_eq!(renew_at(100_000, 160_000, &cfg, 0.0), 140_000);
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let cfg = RenewConfig {
            backoff_initial_ms: 1000,
            backoff_max_secs: 5,
            ..RenewConfig::default()
        };
        let got: Vec<u64> = (1..=6).map(|n| backoff_ms(n, &cfg, 1.0)).collect();
        assert_eq!(got, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff_ms(1, &cfg, 0.5), 500);
        assert_eq!(backoff_ms(u32::MAX, &cfg, 1.0), 5000);
    }

    proptest! {
        #[test]
        fn renewal_falls_inside_the_lifetime_and_the_jitter_band(
            obtained in 0u64..1 << 44,
            lifetime in 1u64..1 << 30,
            jitter in -1.0f64..=1.0,
            at in 0.1f64..=0.95,
            spread in 0.0f64..=0.2,
        ) {
            let cfg = RenewConfig { at_fraction: at, jitter_fraction: spread, ..RenewConfig::default() };
            let end = obtained + lifetime;
            let t = renew_at(obtained, end, &cfg, jitter);
            prop_assert!(t >= obtained && t <= end);
            let lo = obtained as f64 + lifetime as f64 * (at - spread).max(0.0) - 1.0;
            let hi = obtained as f64 + lifetime as f64 * (at + spread).min(1.0) + 1.0;
            prop_assert!((t as f64) >= lo && (t as f64) <= hi, "{t} not in {lo}..{hi}");
        }

        #[test]
        fn backoff_never_exceeds_the_cap_and_never_shrinks_below_half(
            failures in 1u32..100,
            initial in 1u64..100_000,
            max in 1u64..10_000,
            spread in 0.5f64..=1.0,
        ) {
            let cfg = RenewConfig { backoff_initial_ms: initial, backoff_max_secs: max, ..RenewConfig::default() };
            let d = backoff_ms(failures, &cfg, spread);
            prop_assert!(d <= max * 1000);
            let full = backoff_ms(failures, &cfg, 1.0);
            prop_assert!(d * 2 + 1 >= full);
            prop_assert!(backoff_ms(failures + 1, &cfg, 1.0) >= full);
        }
    }
}
