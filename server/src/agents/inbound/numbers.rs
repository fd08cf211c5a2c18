//! The numbers an agent sends, range-checked at the edge before anything
//! adds, stores or shows them (issue 24 point 1).
//!
//! The stores keep integers as signed 64-bit values, and SQLite turns an
//! integer sum that overflows into a REAL, which every later read of the
//! row then refused: one report with `dropped_before = 2^64-1` took the
//! whole fleet view down. So every counter, time and size an agent sends
//! has a range that a real probe stays far inside, and anything outside it
//! is refused with INVALID_ARGUMENT naming the field. Arithmetic on the
//! accepted values still saturates in the stores (a counter summed over
//! years), so the edge and the store each hold on their own.

use rollcall_common::proto;

use super::{Refused, refuse};

/// A report's sequence number is stored as a signed 64-bit integer.
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// Reports one agent may say it dropped since its last delivered one.
/// A probe that reports every second and could deliver nothing for a
/// century stays under this.
pub const MAX_DROPPED: u64 = u32::MAX as u64;
/// The latest time an agent may name: 9999-12-31T23:59:59.999Z, the last
/// instant RFC 3339 can write. Times are Unix milliseconds, never negative.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Memory or free disk in MiB: 2^40 MiB is an exbibyte.
pub const MAX_MEGABYTES: u64 = 1 << 40;
/// The runbook has eight steps; 0 means a check names none.
pub const MAX_RUNBOOK_STEP: u32 = 8;
/// Policy versions are stored as signed 64-bit integers too.
pub const MAX_POLICY_VERSION: u64 = i64::MAX as u64;

/// An unsigned counter or size at most `max`.
pub(super) fn at_most(field: &str, value: u64, max: u64) -> Result<(), Refused> {
    if value > max {
        return refuse(format!("{field} is {value}, above its limit of {max}"));
    }
    Ok(())
}

/// A time in Unix milliseconds: 0 (unknown) up to [`MAX_TIME_MS`].
pub(super) fn time_ms(field: &str, value: i64) -> Result<(), Refused> {
    if !(0..=MAX_TIME_MS).contains(&value) {
        return refuse(format!(
            "{field} is {value}, not a time between 1970 and 9999 in milliseconds"
        ));
    }
    Ok(())
}

/// An enum field holding a value this coordinator knows.
pub(super) fn known<E: TryFrom<i32>>(field: &str, value: i32) -> Result<(), Refused> {
    if E::try_from(value).is_err() {
        return refuse(format!("{field} is {value}, not a known value"));
    }
    Ok(())
}

/// The host facts' sizes.
pub(super) fn host_sizes(host: &proto::HostFacts) -> Result<(), Refused> {
    at_most("host.memory_mb", host.memory_mb, MAX_MEGABYTES)?;
    at_most("host.free_disk_mb", host.free_disk_mb, MAX_MEGABYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accept_their_limit_and_refuse_one_over() {
        assert!(at_most("dropped_before", MAX_DROPPED, MAX_DROPPED).is_ok());
        assert_eq!(
            at_most("dropped_before", u64::MAX, MAX_DROPPED),
            Err(Refused(format!(
                "dropped_before is {}, above its limit of {MAX_DROPPED}",
                u64::MAX
            )))
        );
        assert!(at_most("seq", MAX_SEQ + 1, MAX_SEQ).is_err());
    }

    #[test]
    fn times_run_from_the_epoch_to_the_year_9999() {
        assert!(time_ms("sent_at_ms", 0).is_ok());
        assert!(time_ms("sent_at_ms", MAX_TIME_MS).is_ok());
        assert!(time_ms("sent_at_ms", MAX_TIME_MS + 1).is_err());
        assert!(time_ms("sent_at_ms", -1).is_err());
        assert!(time_ms("sent_at_ms", i64::MIN).is_err());
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        assert!(known::<proto::ReportKind>("kind", proto::ReportKind::Recheck as i32).is_ok());
        assert_eq!(
            known::<proto::ReportKind>("kind", 99),
            Err(Refused("kind is 99, not a known value".into()))
        );
        assert!(known::<proto::Role>("role", -1).is_err());
    }

    #[test]
    fn host_sizes_are_bounded() {
        let mut host = proto::HostFacts {
            memory_mb: MAX_MEGABYTES,
            free_disk_mb: 1,
            ..Default::default()
        };
        assert!(host_sizes(&host).is_ok());
        host.free_disk_mb = u64::MAX;
        assert!(host_sizes(&host).is_err());
    }
}
