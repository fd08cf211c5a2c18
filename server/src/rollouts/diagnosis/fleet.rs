//! The fleet-level conclusion of runbook step 1: when (nearly) every
//! straggler's license check *fails*, the license is the cause, not the
//! endpoints.
//!
//! It is drawn from the stragglers' causes, never from their failing-check
//! names: those include checks that could not run (`error`), and a probe
//! that cannot read the product state must not make the report's headline
//! say the license expired. `license` is runbook step 1, so a straggler's
//! cause is `license` exactly when its license check failed. Stragglers
//! whose cause is `probe_error`, `no_data` or anything else stay in the
//! denominator: what rollcall does not know can only withhold the
//! conclusion, never produce it.

use super::Cause;

/// The fleet cause, from the cause code of every straggler.
pub fn fleet_cause<'a>(straggler_causes: impl IntoIterator<Item = &'a str>) -> Option<Cause> {
    let (mut total, mut license) = (0usize, 0usize);
    for cause in straggler_causes {
        total += 1;
        if cause == Cause::License.code() {
            license += 1;
        }
    }
    if total == 0 {
        return None;
    }
    // "(Nearly) every": at least 90%, and every one when there are few.
    let nearly_all = if total < 10 {
        license == total
    } else {
        license * 10 >= total * 9
    };
    nearly_all.then_some(Cause::License)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_cause_needs_nearly_every_straggler_to_fail_the_license() {
        assert_eq!(fleet_cause(["license", "license"]), Some(Cause::License));
        assert_eq!(fleet_cause(["license", "unknown"]), None);
        let mut many = vec!["license"; 19];
        many.push("connectivity");
        assert_eq!(fleet_cause(many), Some(Cause::License));
        assert_eq!(fleet_cause([]), None);
    }

    #[test]
    fn probe_errors_never_make_a_fleet_cause() {
        assert_eq!(fleet_cause(["probe_error"; 20]), None);
        // Unknown facts withhold the conclusion rather than dilute into it.
        let mut mixed = vec!["license"; 5];
        mixed.extend(["probe_error"; 5]);
        assert_eq!(fleet_cause(mixed), None);
    }
}
