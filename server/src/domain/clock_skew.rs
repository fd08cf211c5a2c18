//! The agent's clock is not trusted (issue 16 point 3).
//!
//! A report says when the probe observed its facts by the endpoint's clock
//! (`observed_at_ms`) and when the agent put it on the stream
//! (`sent_at_ms`). The coordinator stamps its own receive time, so
//! `sent_at_ms − received_at_ms` is the agent's clock skew (plus the
//! transit time, milliseconds). The observation is placed on the
//! coordinator's clock by that skew and never later than the receipt:
//! a report spooled for hours keeps its age, and a clock two hours ahead
//! or behind neither hides other agents' reports nor freezes its own.
//!
//! Ordering never uses these times anyway: an agent's newest facts are
//! its highest stored seq, and the engine reads new check runs by receive
//! time (`store::CheckRunRow`).

use std::time::Duration;

use rollcall_common::proto;

/// What the coordinator makes of one report's times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    /// Agent clock minus coordinator clock (positive: the agent runs ahead).
    pub skew_ms: i64,
    /// When the facts were observed, on the coordinator's clock.
    pub observed_at_ms: i64,
}

/// Reads one report's times against the coordinator's receive time.
pub fn reading(report: &proto::Report, received: i64) -> ClockReading {
    // Agents before issue 16 send no send time: the observation is the
    // best guess then, and a spooled report reads as a clock behind.
    let agent_now = if report.sent_at_ms > 0 {
        report.sent_at_ms
    } else {
        report.observed_at_ms
    };
    let skew_ms = agent_now.saturating_sub(received);
    let observed_at_ms = report.observed_at_ms.saturating_sub(skew_ms).min(received);
    ClockReading {
        skew_ms,
        observed_at_ms,
    }
}

/// True when the skew is beyond the policy's `clock_skew_warn`.
pub fn flagged(skew_ms: i64, warn: Duration) -> bool {
    let warn_ms = i64::try_from(warn.as_millis()).unwrap_or(i64::MAX);
    skew_ms.unsigned_abs() > warn_ms.unsigned_abs()
}

// How a skew reads to people is shared with the admin CLI.
pub use rollcall_common::clock_skew::describe;

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_common::proto;

    const HOUR: i64 = 3_600_000;

    fn record(observed: i64, sent: i64, received: i64) -> (proto::Report, i64) {
        let report = proto::Report {
            observed_at_ms: observed,
            sent_at_ms: sent,
            ..Default::default()
        };
        (report, received)
    }

    fn reading((report, received): &(proto::Report, i64)) -> ClockReading {
        super::reading(report, *received)
    }

    #[test]
    fn a_clock_ahead_is_measured_and_its_observation_moved_back() {
        let now = 1_000 * HOUR;
        let reading = reading(&record(now + 2 * HOUR - 5_000, now + 2 * HOUR, now));
        assert_eq!(reading.skew_ms, 2 * HOUR);
        assert_eq!(reading.observed_at_ms, now - 5_000);
    }

    #[test]
    fn a_clock_behind_is_measured_and_its_observation_moved_forward() {
        let now = 1_000 * HOUR;
        let reading = reading(&record(now - 2 * HOUR - 5_000, now - 2 * HOUR, now));
        assert_eq!(reading.skew_ms, -2 * HOUR);
        assert_eq!(reading.observed_at_ms, now - 5_000);
    }

    #[test]
    fn a_spooled_report_keeps_its_age() {
        let now = 1_000 * HOUR;
        let reading = reading(&record(now - 3 * HOUR, now, now));
        assert_eq!(reading.skew_ms, 0);
        assert_eq!(reading.observed_at_ms, now - 3 * HOUR);
    }

    #[test]
    fn an_observation_is_never_later_than_its_receipt() {
        let now = 1_000 * HOUR;
        // Observed "after" it was sent: a clock stepped back in between.
        let reading = reading(&record(now + HOUR, now, now));
        assert_eq!(reading.observed_at_ms, now);
    }

    #[test]
    fn without_a_send_time_the_observation_stands_in_for_it() {
        let now = 1_000 * HOUR;
        let reading = reading(&record(now + HOUR, 0, now));
        assert_eq!(reading.skew_ms, HOUR);
        assert_eq!(reading.observed_at_ms, now);
    }

    #[test]
    fn flagged_only_beyond_the_bound_either_way() {
        let warn = Duration::from_secs(300);
        assert!(!flagged(300_000, warn));
        assert!(flagged(300_001, warn));
        assert!(flagged(-300_001, warn));
        assert!(!flagged(0, warn));
    }
}
