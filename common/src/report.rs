//! The support report of runbook step 8 as data: the JSON contract
//! (`rollcall report --output json`) the coordinator builds and the admin
//! CLI reads, and its Markdown rendering in the admin's language
//! ([`markdown`]). The coordinator computes it (`server/src/read/report.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod markdown;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub rollout: ReportRollout,
    pub generated_at: String,
    pub affected: Affected,
    pub affected_by_label: Vec<LabelAffected>,
    pub fleet_cause: Option<String>,
    pub by_cause: BTreeMap<String, u32>,
    pub update_agents: Vec<UpdateAgentEntry>,
    pub differences: Vec<Difference>,
    pub update_now: UpdateNow,
    pub stragglers: Vec<StragglerEntry>,
    /// Members waiting for a restart to finish their upgrade. Added in issue 25.
    #[serde(default)]
    pub awaiting_restart: Vec<AwaitingRestartEntry>,
    /// Rollout members whose clock skew is flagged. Added in issue 16 (point 3).
    #[serde(default)]
    pub clock_skew_flagged: Vec<SkewedClock>,
    /// The rollout counted over every endpoint the roster lists (issue 26);
    /// absent without a roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster: Option<RosterAffected>,
}

/// N of M over the roster: `completed + behind + no_probe = listed`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RosterAffected {
    /// `apex_central`, `csv:<file>`.
    pub source: String,
    pub listed: u32,
    pub probed: u32,
    pub completed: u32,
    /// Version known (probe's, else the roster's) and below the target.
    pub behind: u32,
    /// Listed, no probe and no version: cause `no_probe`.
    pub no_probe: u32,
    /// Probes the roster does not list.
    pub unlisted_probes: u32,
    #[serde(default)]
    pub ambiguous: u32,
    pub age_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportRollout {
    pub id: String,
    pub target: String,
    pub started_at: String,
    pub state: String,
}

/// Machines on which the upgrade has not completed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Affected {
    pub count: u32,
    pub total: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabelAffected {
    pub label: String,
    pub value: String,
    pub count: u32,
    pub total: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpdateAgentEntry {
    pub id: String,
    pub hostname: String,
    pub address: String,
    /// Whether the update agent itself finished upgrading.
    pub completed: bool,
    pub version: Option<String>,
    pub program_and_hotfix: bool,
    pub online: bool,
    /// Its clients that are not completed.
    pub blocks: u32,
    /// Other agents claiming the same address (by id): while any do, its
    /// clients are `update_agent_conflict` and `blocks` stays 0. Added in
    /// issue 16 (point 4).
    #[serde(default)]
    pub contested_by: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Difference {
    pub attribute: String,
    pub value: String,
    /// Stragglers with this value, of `stragglers_total`.
    pub stragglers: u32,
    /// Completed agents with this value, of `completed_total`.
    pub completed: u32,
    pub stragglers_total: u32,
    pub completed_total: u32,
    /// Share among stragglers minus share among completed agents.
    pub separation: f64,
}

/// An agent whose clock is off the coordinator's by more than the policy's
/// `clock_skew_warn`: its own times are not to be read as the coordinator's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SkewedClock {
    pub id: String,
    pub hostname: String,
    /// Its clock minus the coordinator's (positive: ahead).
    pub clock_skew_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailingCheck {
    pub name: String,
    pub runbook_step: u32,
    pub status: String,
    pub message: String,
    pub evidence: BTreeMap<String, String>,
    pub remediation: String,
    /// The message as the agent's catalogue code and parameters (see
    /// `check_text.rs`); empty from older probes, `message` is then the
    /// text. Added in issue 16 (point 7).
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The probe cut something of this check to the coordinator's limits
    /// (a cut string ends in "…[truncated]"); written only when true.
    /// Added in issue 24 (point 6).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The one mapping of an agent's check result to its JSON form, shared by
/// the support report (its straggler's failing checks) and
/// `rollcall agent ID --output json` (every check), so both name and fill
/// the fields the same way.
impl From<&crate::proto::CheckResult> for FailingCheck {
    fn from(check: &crate::proto::CheckResult) -> Self {
        FailingCheck {
            name: check.name.clone(),
            runbook_step: check.runbook_step,
            status: crate::proto::status_word(check.status).into(),
            message: check.message.clone(),
            evidence: check
                .evidence
                .iter()
                .map(|evidence| (evidence.key.clone(), evidence.value.clone()))
                .collect(),
            remediation: check.remediation.clone(),
            code: check.code.clone(),
            params: check.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            truncated: check.truncated,
        }
    }
}

/// The newest complete log bundle of a straggler (runbook step 8,
/// `rollcall collect`). Added in issue 16 (point 6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleRef {
    pub command_id: String,
    pub collected_at: String,
    pub bytes: u64,
    pub files: u32,
    pub skipped: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StragglerEntry {
    pub id: String,
    pub hostname: String,
    pub cause: String,
    pub runbook_step: u32,
    pub state: String,
    pub update_agent: Option<String>,
    pub blocks: u32,
    pub failing: Vec<FailingCheck>,
    /// For a cause that names no failing step, what the checks say: for
    /// `probe_error` the erroring checks and their messages, for `no_data`
    /// the checks without a result, for `update_agent_conflict` the
    /// contested address and its claimants (empty otherwise). Added in issue 16.
    #[serde(default)]
    pub detail: String,
    /// With `update_agent_conflict`: the ids of every agent claiming the
    /// address this client pulls from. Added in issue 16 (point 4).
    #[serde(default)]
    pub update_agent_claimants: Vec<String>,
    /// `detail` as a catalogue code (`detail-CODE`) and parameters, for the
    /// report in the admin's language. Added in issue 16 (point 7).
    #[serde(default)]
    pub detail_code: String,
    #[serde(default)]
    pub detail_params: BTreeMap<String, String>,
    /// Its newest update-failure log bundle, if one was collected.
    #[serde(default)]
    pub bundle: Option<BundleRef>,
    /// The cause was concluded from circumstances (a signal), not read.
    /// Added in issue 25.
    #[serde(default)]
    pub inferred: bool,
    /// The values read that name the cause (`Misc.\PatternDate = 20261201`).
    /// Added in issue 25.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// The signal that gave the cause (`signal-CODE` in the catalogs),
    /// empty when a check did. Added in issue 25.
    #[serde(default)]
    pub signal: String,
    /// Failing checks that follow from the update agent blocking this
    /// client (`update_agent`), not faults of its own: they clear when the
    /// update agent is fixed. Kept out of `failing`. Added in issue 29.
    #[serde(default)]
    pub consequences: Vec<FailingCheck>,
}

/// A member whose upgrade is installed and waits for a restart: counted
/// apart, not a straggler (issue 25).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AwaitingRestartEntry {
    pub id: String,
    pub hostname: String,
    pub version: Option<String>,
    /// What says a restart is pending (a registry key or value).
    pub marker: String,
}

/// One side's outcome, in agents.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Tried {
    /// Agents that ran Update Now while behind the target.
    pub tried: u32,
    /// Of those, agents that reported the target version within the window.
    pub completed: u32,
    /// Agents that refused every Update Now they got and ran none. Added
    /// in issue 16 (point 5).
    #[serde(default)]
    pub refused: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct UpdateNow {
    /// "Update Now" run on the endpoint itself (tray icon).
    pub agent_side: Tried,
    /// Manual update notifications sent by the coordinator.
    pub server_side: Tried,
    /// The policy's `update_now_window` in milliseconds: how long after an
    /// Update Now a report at the target still counts. Added in issue 16.
    #[serde(default)]
    pub window_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    #[test]
    fn a_check_result_maps_to_its_json_fields_in_contract_order() {
        let check = proto::CheckResult {
            name: "update_permission".into(),
            runbook_step: 3,
            status: proto::CheckStatus::Fail as i32,
            message: "updates are not allowed".into(),
            evidence: vec![proto::Evidence {
                key: "permission".into(),
                value: "deny".into(),
            }],
            remediation: "allow updates".into(),
            duration_ms: 12,
            code: "update-denied".into(),
            params: [("permission".to_string(), "deny".to_string())].into(),
            truncated: false,
        };
        let json = serde_json::to_string(&FailingCheck::from(&check)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"name":"update_permission","runbook_step":3,"status":"fail","message":"updates are not allowed","evidence":{"permission":"deny"},"remediation":"allow updates","code":"update-denied","params":{"permission":"deny"}}"#
        );
        let cut = proto::CheckResult {
            truncated: true,
            ..check
        };
        let json = serde_json::to_string(&FailingCheck::from(&cut)).unwrap_or_default();
        assert!(json.ends_with(r#","truncated":true}"#), "{json}");
    }
}
