//! An agent's clock skew (its clock minus the coordinator's, measured by
//! the coordinator: `server/src/domain/clock_skew.rs`) as people read it, for the
//! dashboard and the admin CLI.

/// A clock skew as people read it: `+2h00m05s ahead`, `-1.200s behind`.
pub fn describe(skew_ms: i64) -> String {
    let magnitude = skew_ms.unsigned_abs();
    let (hours, minutes) = (magnitude / 3_600_000, magnitude / 60_000 % 60);
    let seconds = magnitude % 60_000;
    let amount = if hours > 0 {
        format!("{hours}h{minutes:02}m{:02}s", seconds / 1000)
    } else if minutes > 0 {
        format!("{minutes}m{:02}s", seconds / 1000)
    } else {
        format!("{}.{:03}s", seconds / 1000, seconds % 1000)
    };
    match skew_ms.signum() {
        1 => format!("+{amount} ahead"),
        -1 => format!("-{amount} behind"),
        _ => "in step".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_skew_reads_as_hours_minutes_and_seconds() {
        assert_eq!(describe(2 * HOUR + 5_000), "+2h00m05s ahead");
        assert_eq!(describe(-(2 * 60_000 + 1_000)), "-2m01s behind");
        assert_eq!(describe(-1_200), "-1.200s behind");
        assert_eq!(describe(0), "in step");
    }
}
