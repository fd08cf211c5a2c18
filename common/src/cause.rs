//! Cause codes: the words the CLI, dashboard, report, metrics and i18n
//! catalogue share (a contract), and the runbook step each one names.
//!
//! Eleven causes name a runbook step (1–7). Three name none, on purpose:
//! they say that rollcall does not know the cause yet, and why. Keeping them
//! apart from the runbook causes is what stops a broken probe or a missing
//! report from being passed off to support as "the license expired" or
//! "reinstall the agent".

use serde::Serialize;

/// Cause codes in display order: runbook causes in runbook order, then the
/// causes that name no step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    License,
    UpdatePermission,
    UpdateSource,
    /// Step 3, on the update agent itself: it does not serve "Security agent
    /// program and HotFix", so none of its clients can upgrade (added in
    /// issue 29; before, it read as `update_source`).
    UpdateAgentProgram,
    UpdateAgent,
    /// Step 3, unresolved: several agents claim the address the client pulls
    /// from, so rollcall cannot say which one serves it (and blames none).
    UpdateAgentConflict,
    Certificates,
    Connectivity,
    Offline,
    SystemRequirements,
    /// Step 7: every check ran and passed on fresh facts; reinstall.
    Unknown,
    /// All checks pass, but on facts observed before the last recheck (or
    /// before any recheck): the straggler waits for fresh facts.
    AwaitingRecheck,
    /// The probe has not reported (all of) the runbook's checks.
    NoData,
    /// A check could not run (missing, unreadable or unparsable product
    /// state, a timed-out or crashed check): the probe is at fault, not a step.
    ProbeError,
}

/// The step number of causes that name no runbook step.
pub const NO_STEP: u32 = 0;

impl Cause {
    pub const ALL: [Cause; 14] = [
        Cause::License,
        Cause::UpdatePermission,
        Cause::UpdateSource,
        Cause::UpdateAgentProgram,
        Cause::UpdateAgent,
        Cause::UpdateAgentConflict,
        Cause::Certificates,
        Cause::Connectivity,
        Cause::Offline,
        Cause::SystemRequirements,
        Cause::Unknown,
        Cause::AwaitingRecheck,
        Cause::NoData,
        Cause::ProbeError,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Cause::License => "license",
            Cause::UpdatePermission => "update_permission",
            Cause::UpdateSource => "update_source",
            Cause::UpdateAgentProgram => "update_agent_program",
            Cause::UpdateAgent => "update_agent",
            Cause::UpdateAgentConflict => "update_agent_conflict",
            Cause::Certificates => "certificates",
            Cause::Connectivity => "connectivity",
            Cause::Offline => "offline",
            Cause::SystemRequirements => "system_requirements",
            Cause::Unknown => "unknown",
            Cause::AwaitingRecheck => "awaiting_recheck",
            Cause::NoData => "no_data",
            Cause::ProbeError => "probe_error",
        }
    }

    pub fn from_code(code: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|cause| cause.code() == code)
    }

    /// The runbook step this cause names, or [`NO_STEP`] (0) when it names
    /// none (`awaiting_recheck`, `no_data`, `probe_error`).
    pub fn runbook_step(self) -> u32 {
        match self {
            Cause::License => 1,
            Cause::UpdatePermission => 2,
            Cause::UpdateSource | Cause::UpdateAgentProgram | Cause::UpdateAgent | Cause::UpdateAgentConflict => 3,
            Cause::Certificates => 4,
            Cause::Connectivity | Cause::Offline => 5,
            Cause::SystemRequirements => 6,
            Cause::Unknown => 7,
            Cause::AwaitingRecheck | Cause::NoData | Cause::ProbeError => NO_STEP,
        }
    }

    /// The runbook step a cause code names, for every front end (CLI,
    /// dashboard, report). A code rollcall does not know (written by a
    /// newer coordinator) is read as `unknown`: step 7, overwrite install.
    pub fn step_of_code(code: &str) -> u32 {
        Cause::from_code(code).unwrap_or(Cause::Unknown).runbook_step()
    }

    /// A cause found by a failing check in steps 1–6: something an admin or
    /// the endpoint can fix, after which the agent may upgrade.
    pub fn is_blocking(self) -> bool {
        (1..=6).contains(&self.runbook_step())
    }

    /// The display position of a cause code; codes rollcall does not know
    /// come last.
    pub fn rank(code: &str) -> usize {
        Cause::from_code(code).map_or(Cause::ALL.len(), |cause| cause as usize)
    }

    /// The cause a failing check points at.
    pub fn of_check(name: &str) -> Option<Cause> {
        match name {
            "license" => Some(Cause::License),
            "update_permission" => Some(Cause::UpdatePermission),
            "update_source" => Some(Cause::UpdateSource),
            "certificates" => Some(Cause::Certificates),
            "connectivity" => Some(Cause::Connectivity),
            "system_requirements" => Some(Cause::SystemRequirements),
            _ => None,
        }
    }
}

/// The probe's checks of runbook steps 1–6, by their contract names: each
/// must have run and passed before step 7 can be recommended.
pub const RUNBOOK_CHECKS: &[&str] = crate::checks::RUNBOOK_STEPS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_codes_round_trip_and_rank_in_display_order() {
        for (index, cause) in Cause::ALL.into_iter().enumerate() {
            assert_eq!(Cause::from_code(cause.code()), Some(cause));
            assert_eq!(Cause::rank(cause.code()), index);
        }
        assert_eq!(Cause::rank("no-such-cause"), Cause::ALL.len());
    }

    #[test]
    fn the_existing_codes_are_a_contract_and_update_agent_program_is_step_3() {
        let codes: Vec<&str> = Cause::ALL.into_iter().map(Cause::code).collect();
        for code in [
            "license",
            "update_permission",
            "update_source",
            "update_agent",
            "update_agent_conflict",
            "certificates",
            "connectivity",
            "offline",
            "system_requirements",
            "unknown",
            "awaiting_recheck",
            "no_data",
            "probe_error",
        ] {
            assert!(codes.contains(&code), "{code}");
        }
        assert_eq!(Cause::step_of_code("update_agent_program"), 3);
        assert!(Cause::UpdateAgentProgram.is_blocking());
    }

    #[test]
    fn step_of_code_names_each_causes_step_and_reads_an_unknown_code_as_step_7() {
        for cause in Cause::ALL {
            assert_eq!(Cause::step_of_code(cause.code()), cause.runbook_step());
        }
        assert_eq!(Cause::step_of_code("no-such-cause"), 7);
        assert_eq!(Cause::step_of_code(""), 7);
    }

    #[test]
    fn only_failing_step_causes_block_and_the_rest_name_no_step() {
        for cause in [Cause::AwaitingRecheck, Cause::NoData, Cause::ProbeError] {
            assert_eq!(cause.runbook_step(), NO_STEP);
            assert!(!cause.is_blocking());
        }
        assert!(!Cause::Unknown.is_blocking());
        assert!(Cause::License.is_blocking() && Cause::SystemRequirements.is_blocking());
        for name in RUNBOOK_CHECKS {
            assert!(Cause::of_check(name).is_some(), "{name}");
        }
    }
}
