//! The coordinator's clock as the agent sees it (issue 16 point 3).
//!
//! Commands carry their expiry on the coordinator's clock
//! (`Command.expires_at_ms`). An endpoint whose own clock runs two hours
//! ahead would call every command expired, and one behind would run stale
//! ones, so the agent keeps the offset `Welcome.now_ms` gives at every
//! connection and judges expiry by the coordinator's time. The offset
//! includes the welcome's transit time (milliseconds), which is nothing
//! against expiries of seconds to minutes.

use rollcall_common::timefmt::now_ms;

/// The offset of the coordinator's clock from this endpoint's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoordinatorClock {
    /// Coordinator clock minus the local clock (0 until a welcome).
    offset_ms: i64,
}

impl CoordinatorClock {
    /// Takes the coordinator's time from a welcome received at `local_now_ms`;
    /// a welcome without one (`0`, an older coordinator) keeps the offset.
    pub fn welcomed(&mut self, coordinator_now_ms: i64, local_now_ms: i64) {
        if coordinator_now_ms > 0 {
            self.offset_ms = coordinator_now_ms.saturating_sub(local_now_ms);
        }
    }

    /// The coordinator's time now.
    pub fn now_ms(&self) -> i64 {
        self.at(now_ms())
    }

    /// The coordinator's time when the local clock reads `local_ms`.
    pub fn at(&self, local_ms: i64) -> i64 {
        local_ms.saturating_add(self.offset_ms)
    }

    /// True when a command expiring at `expires_at_ms` (coordinator time,
    /// 0 = never) is past it when the local clock reads `local_ms`.
    pub fn expired_at(&self, expires_at_ms: i64, local_ms: i64) -> bool {
        expires_at_ms != 0 && expires_at_ms < self.at(local_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const COORDINATOR_NOW: i64 = 1_000 * HOUR;

    #[test]
    fn a_clock_ahead_does_not_expire_a_fresh_command() {
        let local_now = COORDINATOR_NOW + 2 * HOUR;
        let expires = COORDINATOR_NOW + 60_000;
        let mut clock = CoordinatorClock::default();
        assert!(clock.expired_at(expires, local_now), "judged by the local clock");
        clock.welcomed(COORDINATOR_NOW, local_now);
        assert!(!clock.expired_at(expires, local_now));
        assert!(clock.expired_at(expires, local_now + 61_000));
    }

    #[test]
    fn a_clock_behind_does_not_run_a_stale_command() {
        let local_now = COORDINATOR_NOW - 2 * HOUR;
        let expired = COORDINATOR_NOW - 60_000;
        let mut clock = CoordinatorClock::default();
        assert!(!clock.expired_at(expired, local_now), "judged by the local clock");
        clock.welcomed(COORDINATOR_NOW, local_now);
        assert!(clock.expired_at(expired, local_now));
    }

    #[test]
    fn no_expiry_never_expires_and_an_empty_welcome_keeps_the_offset() {
        let mut clock = CoordinatorClock::default();
        clock.welcomed(COORDINATOR_NOW, COORDINATOR_NOW - HOUR);
        clock.welcomed(0, 5);
        assert_eq!(clock.at(0), HOUR);
        assert!(!clock.expired_at(0, i64::MAX));
    }
}
