//! The runbook cause of a straggler (runbook steps 1–7).
//!
//! The primary cause is the first failing step in runbook order; every
//! failing check is kept. `update_agent` (step 3) is given to a client whose
//! update agent — the update agent whose `address` equals the client's
//! custom `source_address` — is itself behind, lacks "Security agent program
//! and HotFix", or is offline, when the client shows no earlier cause.
//! `unknown` (step 7) recommends an overwrite install.
//!
//! Pure functions: the engine feeds them what the store recorded.

use std::collections::HashMap;

use rollcall_common::proto::{self, CheckStatus};
use serde::Serialize;

/// Cause codes (a contract) in runbook order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    License,
    UpdatePermission,
    UpdateSource,
    UpdateAgent,
    Certificates,
    Connectivity,
    Offline,
    SystemRequirements,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::License,
        Cause::UpdatePermission,
        Cause::UpdateSource,
        Cause::UpdateAgent,
        Cause::Certificates,
        Cause::Connectivity,
        Cause::Offline,
        Cause::SystemRequirements,
        Cause::Unknown,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Cause::License => "license",
            Cause::UpdatePermission => "update_permission",
            Cause::UpdateSource => "update_source",
            Cause::UpdateAgent => "update_agent",
            Cause::Certificates => "certificates",
            Cause::Connectivity => "connectivity",
            Cause::Offline => "offline",
            Cause::SystemRequirements => "system_requirements",
            Cause::Unknown => "unknown",
        }
    }

    pub fn from_code(code: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|cause| cause.code() == code)
    }

    pub fn runbook_step(self) -> u32 {
        match self {
            Cause::License => 1,
            Cause::UpdatePermission => 2,
            Cause::UpdateSource | Cause::UpdateAgent => 3,
            Cause::Certificates => 4,
            Cause::Connectivity | Cause::Offline => 5,
            Cause::SystemRequirements => 6,
            Cause::Unknown => 7,
        }
    }

    /// The cause a failing check points at.
    fn of_check(name: &str) -> Option<Cause> {
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

/// What the engine knows of an update agent.
#[derive(Debug, Clone)]
pub struct UpdateAgentView {
    pub id: String,
    pub at_target: bool,
    pub program_and_hotfix: bool,
    pub online: bool,
}

impl UpdateAgentView {
    /// Why this update agent blocks its clients, if it does.
    pub fn blocking(&self) -> Option<&'static str> {
        if !self.online {
            Some("the update agent is offline")
        } else if !self.program_and_hotfix {
            Some("the update agent does not serve \"Security agent program and HotFix\"")
        } else if !self.at_target {
            Some("the update agent has not finished upgrading itself")
        } else {
            None
        }
    }
}

/// Update agents by the address their clients pull from.
pub type UpdateAgentIndex = HashMap<String, UpdateAgentView>;

/// The diagnosis of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    /// Names of every failing check (fail or error), in runbook order.
    pub failing: Vec<String>,
    /// The update agent this client pulls from, if it is one rollcall knows.
    pub update_agent: Option<String>,
}

fn is_failing(check: &proto::CheckResult) -> bool {
    matches!(
        CheckStatus::try_from(check.status),
        Ok(CheckStatus::Fail) | Ok(CheckStatus::Error)
    )
}

/// The update agent a client pulls from, by its custom source address.
pub fn update_agent_of<'a>(
    product: &proto::ProductSummary,
    index: &'a UpdateAgentIndex,
) -> Option<&'a UpdateAgentView> {
    if product.update_source != "custom" || product.source_address.is_empty() {
        return None;
    }
    index.get(&product.source_address)
}

/// Diagnoses an agent that is behind the target.
pub fn diagnose(
    product: &proto::ProductSummary,
    checks: &[proto::CheckResult],
    online: bool,
    update_agents: &UpdateAgentIndex,
) -> Diagnosis {
    let mut failing: Vec<&proto::CheckResult> = checks.iter().filter(|check| is_failing(check)).collect();
    failing.sort_by_key(|check| (check.runbook_step, check.name.clone()));
    let mut causes: Vec<Cause> = failing
        .iter()
        .filter_map(|check| Cause::of_check(&check.name))
        .collect();
    let update_agent = update_agent_of(product, update_agents);
    if update_agent.is_some_and(|ua| ua.blocking().is_some()) {
        causes.push(Cause::UpdateAgent);
    }
    if !online {
        causes.push(Cause::Offline);
    }
    let cause = causes.into_iter().min().unwrap_or(Cause::Unknown);
    Diagnosis {
        cause,
        failing: failing.iter().map(|check| check.name.clone()).collect(),
        update_agent: update_agent.map(|ua| ua.id.clone()),
    }
}

/// The fleet-level conclusion: when the license check fails on (nearly)
/// every straggler, the license is the cause, not the endpoints.
pub fn fleet_cause(stragglers_failing: &[Vec<String>]) -> Option<Cause> {
    let total = stragglers_failing.len();
    if total == 0 {
        return None;
    }
    let license = stragglers_failing
        .iter()
        .filter(|failing| failing.iter().any(|name| name == "license"))
        .count();
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

    fn check(name: &str, step: u32, status: CheckStatus) -> proto::CheckResult {
        proto::CheckResult {
            name: name.into(),
            runbook_step: step,
            status: status as i32,
            ..Default::default()
        }
    }

    fn custom(address: &str) -> proto::ProductSummary {
        proto::ProductSummary {
            update_source: "custom".into(),
            source_address: address.into(),
            ..Default::default()
        }
    }

    #[test]
    fn first_failing_step_wins_and_all_are_kept() {
        let checks = [
            check("connectivity", 5, CheckStatus::Fail),
            check("update_permission", 2, CheckStatus::Fail),
            check("license", 1, CheckStatus::Pass),
        ];
        let diagnosis = diagnose(&Default::default(), &checks, true, &UpdateAgentIndex::new());
        assert_eq!(diagnosis.cause, Cause::UpdatePermission);
        assert_eq!(diagnosis.failing, vec!["update_permission", "connectivity"]);
    }

    #[test]
    fn a_blocking_update_agent_is_the_cause_unless_an_earlier_step_fails() {
        let mut index = UpdateAgentIndex::new();
        index.insert(
            "ua:8080".into(),
            UpdateAgentView {
                id: "ua".into(),
                at_target: false,
                program_and_hotfix: true,
                online: true,
            },
        );
        let diagnosis = diagnose(&custom("ua:8080"), &[], true, &index);
        assert_eq!(diagnosis.cause, Cause::UpdateAgent);
        assert_eq!(diagnosis.update_agent.as_deref(), Some("ua"));
        let diagnosis = diagnose(
            &custom("ua:8080"),
            &[check("license", 1, CheckStatus::Fail)],
            true,
            &index,
        );
        assert_eq!(diagnosis.cause, Cause::License);
        // A healthy update agent is linked but blames nothing.
        index.insert(
            "ua:8080".into(),
            UpdateAgentView {
                id: "ua".into(),
                at_target: true,
                program_and_hotfix: true,
                online: true,
            },
        );
        let diagnosis = diagnose(&custom("ua:8080"), &[], true, &index);
        assert_eq!(diagnosis.cause, Cause::Unknown);
        assert_eq!(diagnosis.update_agent.as_deref(), Some("ua"));
    }

    #[test]
    fn offline_ranks_at_step_five_and_unknown_is_the_rest() {
        let diagnosis = diagnose(
            &Default::default(),
            &[check("system_requirements", 6, CheckStatus::Fail)],
            false,
            &UpdateAgentIndex::new(),
        );
        assert_eq!(diagnosis.cause, Cause::Offline);
        let diagnosis = diagnose(
            &Default::default(),
            &[check("version", 0, CheckStatus::Warn)],
            true,
            &UpdateAgentIndex::new(),
        );
        assert_eq!(diagnosis.cause, Cause::Unknown);
        assert_eq!(Cause::Unknown.runbook_step(), 7);
    }

    #[test]
    fn fleet_cause_needs_nearly_every_straggler() {
        let license = vec!["license".to_string()];
        assert_eq!(fleet_cause(&[license.clone(), license.clone()]), Some(Cause::License));
        assert_eq!(fleet_cause(&[license.clone(), vec![]]), None);
        let mut many = vec![license.clone(); 19];
        many.push(vec![]);
        assert_eq!(fleet_cause(&many), Some(Cause::License));
        assert_eq!(fleet_cause(&[]), None);
    }

    #[test]
    fn cause_codes_round_trip() {
        for cause in Cause::ALL {
            assert_eq!(Cause::from_code(cause.code()), Some(cause));
        }
    }
}
