//! How far review-by may lie ahead, in one place: the appliance applies it when an
//! integration is registered or recertified, the auditor when it replays those records
//! (FORMAT.md §13.3), so the two cannot disagree about how long an approval lasts.
//!
//! **The rule.** A review-by set at time `now` (Unix seconds) for an integration of class
//! `c` may be at most the end (23:59:59 UTC) of the day `days(c)` days after `now`, so a
//! plain date exactly that many days ahead is accepted. `days` is 365 for routine and 90 for
//! privileged integrations unless the deployment configures other caps (the appliance's
//! `[governance] routine_review_max_days` / `privileged_review_max_days`, the auditor's
//! `--routine-review-max-days` / `--privileged-review-max-days`).

use crate::event::PrivilegeClass;

const DAY: u64 = 86_400;

/// The longest review period per privilege class, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewCaps {
    /// Routine integrations (default 365).
    pub routine_days: u64,
    /// Privileged integrations (default 90).
    pub privileged_days: u64,
}

impl Default for ReviewCaps {
    fn default() -> Self {
        ReviewCaps {
            routine_days: 365,
            privileged_days: 90,
        }
    }
}

/// A review-by beyond the cap of its class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at most {days} days from now for a {class} integration (latest allowed {limit}, Unix seconds)")]
pub struct ReviewTooFar {
    /// The cap of the class, in days.
    pub days: u64,
    /// `routine` or `privileged`.
    pub class: &'static str,
    /// The latest review-by allowed, Unix seconds.
    pub limit: u64,
}

impl ReviewCaps {
    /// The cap of `class`, in days.
    pub fn days(&self, class: PrivilegeClass) -> u64 {
        match class {
            PrivilegeClass::Routine => self.routine_days,
            PrivilegeClass::Privileged => self.privileged_days,
        }
    }

    /// The latest review-by that may be set at `now` for `class`.
    pub fn limit(&self, class: PrivilegeClass, now: u64) -> u64 {
        let end = now.saturating_add(self.days(class).saturating_mul(DAY));
        (end / DAY).saturating_mul(DAY).saturating_add(DAY - 1)
    }

    /// Whether `review_by`, set at `now`, is within the cap of `class`.
    pub fn check(
        &self,
        class: PrivilegeClass,
        review_by: u64,
        now: u64,
    ) -> Result<(), ReviewTooFar> {
        let limit = self.limit(class, now);
        if review_by <= limit {
            return Ok(());
        }
        Err(ReviewTooFar {
            days: self.days(class),
            class: match class {
                PrivilegeClass::Routine => "routine",
                PrivilegeClass::Privileged => "privileged",
            },
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_ends_with_the_day_that_many_days_ahead() {
        let caps = ReviewCaps::default();
        let now = 1_700_000_000; // 2023-11-14T22:13:20Z
        let routine_end = 1_731_542_399; // 2024-11-13T23:59:59Z, the day 365 days later
        assert_eq!(caps.limit(PrivilegeClass::Routine, now), routine_end);
        assert!(caps
            .check(PrivilegeClass::Routine, routine_end, now)
            .is_ok());
        let err = caps
            .check(PrivilegeClass::Routine, routine_end + 1, now)
            .unwrap_err();
        assert_eq!((err.days, err.class), (365, "routine"));
        assert!(caps
            .check(PrivilegeClass::Privileged, now + 90 * DAY, now)
            .is_ok());
        assert!(caps
            .check(PrivilegeClass::Privileged, now + 91 * DAY, now)
            .is_err());
        // Far-future values saturate instead of wrapping.
        assert!(caps
            .check(PrivilegeClass::Routine, u64::MAX, u64::MAX)
            .is_ok());
        assert!(caps.check(PrivilegeClass::Routine, u64::MAX, now).is_err());
    }
}
