//! The cause of a straggler, by runbook step — and only when a step failed.
//!
//! Support acts on what rollcall says, so a diagnosis never names a runbook
//! step it has no evidence for:
//! - a step is the cause only when a check of it *failed* (or the
//!   coordinator saw it fail: the probe offline, step 5; the client's update
//!   agent blocking, step 3). The first failing step in runbook order wins;
//!   every failing or erroring check is kept in `failing`.
//! - a check that could not run (`error`, e.g. the product state file is
//!   missing or unparsable) says nothing about its step: with no failing
//!   step it gives `probe_error`, never `license`.
//! - no result for some of steps 1–6 gives `no_data`.
//! - step 7 (`unknown`, overwrite install) needs steps 1–6 excluded: every
//!   check of them ran and passed, on a check run observed after the last
//!   recheck, and at least one recheck was sent. Passing facts older than
//!   that give `awaiting_recheck`.
//!
//! `update_agent_program` (step 3) is given to an update agent whose
//! `update_source` check failed because it does not serve "Security agent
//! program and HotFix": the runbook's step-3 case, with its own remediation
//! (enable it for that update agent in the console), never read as a wrong
//! update source.
//!
//! `update_agent` (step 3) is given to a client whose update agent — the
//! update agent whose `address` is the client's custom `source_address`,
//! both normalised by `address_key` — is itself behind, lacks "Security
//! agent program and HotFix", or is offline, when the client shows no
//! earlier cause. When several agents claim that address,
//! `update_agent_conflict` (step 3) names them instead: which one the client
//! pulls from is unknown, so none is blamed. A client's failing check that
//! follows from its blocking update agent (the update source unreachable
//! while that update agent is offline) is a consequence of it
//! ([`consequences`]), not a fault of its own: it is left out of `failing`
//! and the report shows it under the update agent.
//!
//! Pure functions: the engine feeds them what the store recorded.
//!
//! Longer than ~400 lines: the runbook's order is read top to bottom in one
//! place; signals, update agents and the fleet conclusion are apart.

mod fleet;
pub mod signals;
mod update_agents;

use rollcall_common::proto::{self, CheckStatus};

// Cause codes are shared with the admin CLI (rollcall_common::cause).
pub use fleet::fleet_cause;
pub use rollcall_common::cause::{Cause, NO_STEP, RUNBOOK_CHECKS};
pub use signals::{Signal, SignalContext, SignalKind};
pub use update_agents::{Claim, UpdateAgentIndex, UpdateAgentView};

/// Most evidence strings kept per straggler.
pub const MAX_EVIDENCE: usize = 16;

/// What the coordinator knows of one agent behind the target.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub product: &'a proto::ProductSummary,
    /// The agent's latest check run (empty when it never reported checks).
    pub checks: &'a [proto::CheckResult],
    /// When the probe observed that run, on the coordinator's clock (the
    /// agent's own is corrected by its measured skew: `clock_skew`).
    pub checks_observed_at_ms: i64,
    /// False when the probe has not been seen within the offline window.
    pub online: bool,
    /// Rechecks the rollout has sent this agent since it became a straggler.
    pub rechecks_sent: u32,
    /// When the last of them was sent (the coordinator's clock).
    pub last_recheck_at_ms: i64,
    /// What the agent's product summary says beyond the checks
    /// ([`signals::signals`]).
    pub signals: &'a [Signal],
}

/// The diagnosis of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    /// Names of every failing check (fail or error), in runbook order.
    pub failing: Vec<String>,
    /// The update agent this client pulls from, if it is one rollcall knows.
    pub update_agent: Option<String>,
    /// Why this cause, in one line: for `probe_error` the erroring checks
    /// and their messages, for `no_data` the checks without a result.
    pub detail: String,
    /// The cause was concluded from circumstances, not read (a signal).
    pub inferred: bool,
    /// The values read that name the cause (a signal's, or the failing
    /// check's message and evidence).
    pub evidence: Vec<String>,
    /// The signal that gave the cause, if one did.
    pub signal: Option<SignalKind>,
}

impl Diagnosis {
    /// A diagnosis of nothing (an agent at the target).
    pub fn none(update_agent: Option<String>) -> Diagnosis {
        Diagnosis {
            cause: Cause::Unknown,
            failing: Vec::new(),
            update_agent,
            detail: String::new(),
            inferred: false,
            evidence: Vec::new(),
            signal: None,
        }
    }
}

/// The evidence for `cause`: the signal that gave it, else its failing
/// check's message and evidence (`name: message`, `key = value`).
pub fn evidence_for(cause: Cause, signals: &[Signal], checks: &[proto::CheckResult]) -> (bool, Vec<String>) {
    let read = signals
        .iter()
        .find(|signal| !signal.inferred && signal.kind.cause() == cause);
    let check = checks
        .iter()
        .find(|check| status_of(check) == CheckStatus::Fail && Cause::of_check(&check.name) == Some(cause));
    if let Some(check) = check {
        let mut evidence = vec![format!("{}: {}", check.name, check.message)];
        evidence.extend(
            check
                .evidence
                .iter()
                .map(|pair| format!("{} = {}", pair.key, pair.value)),
        );
        if let Some(signal) = read {
            evidence.extend(signal.evidence.iter().cloned());
        }
        evidence.truncate(MAX_EVIDENCE);
        return (false, evidence);
    }
    if let Some(signal) = read {
        return (false, signal.evidence.clone());
    }
    match signals.iter().find(|signal| signal.kind.cause() == cause) {
        Some(signal) => (signal.inferred, signal.evidence.clone()),
        None => (false, Vec::new()),
    }
}

fn status_of(check: &proto::CheckResult) -> CheckStatus {
    CheckStatus::try_from(check.status).unwrap_or(CheckStatus::Unspecified)
}

/// A check that could not run: an error, or a result without a status.
fn is_erroring(check: &proto::CheckResult) -> bool {
    matches!(status_of(check), CheckStatus::Error | CheckStatus::Unspecified)
}

/// A check that ran and found nothing wrong (a warning is not a failure).
fn is_passing(check: &proto::CheckResult) -> bool {
    matches!(status_of(check), CheckStatus::Pass | CheckStatus::Warn)
}

/// Who claims to serve a client, by its custom source address.
pub fn claim_of<'a>(product: &proto::ProductSummary, index: &'a UpdateAgentIndex) -> Option<Claim<'a>> {
    if product.update_source != "custom" || product.source_address.is_empty() {
        return None;
    }
    index.claim(&product.source_address)
}

/// The update agent a client pulls from: only when exactly one agent claims
/// its custom source address.
pub fn update_agent_of<'a>(
    product: &proto::ProductSummary,
    index: &'a UpdateAgentIndex,
) -> Option<&'a UpdateAgentView> {
    match claim_of(product, index)? {
        Claim::One(view) => Some(view),
        Claim::Contested(_) => None,
    }
}

/// The ids of the agents that all claim a client's source address, when
/// more than one does (empty otherwise).
pub fn claimants_of(product: &proto::ProductSummary, index: &UpdateAgentIndex) -> Vec<String> {
    match claim_of(product, index) {
        Some(Claim::Contested(claimants)) => claimants.iter().map(|claimant| claimant.id.clone()).collect(),
        _ => Vec::new(),
    }
}

/// The detail of `update_agent_conflict`: the address and its claimants.
pub fn conflict_detail(product: &proto::ProductSummary, claimants: &[String]) -> String {
    format!(
        "{} agents claim to be the update agent at {}: {}",
        claimants.len(),
        product.source_address,
        claimants.join(", ")
    )
}

/// The checks of steps 1–6 without a passing result.
fn missing_checks(checks: &[&proto::CheckResult]) -> Vec<&'static str> {
    RUNBOOK_CHECKS
        .iter()
        .copied()
        .filter(|name| !checks.iter().any(|check| check.name == *name && is_passing(check)))
        .collect()
}

/// What the checks say about a cause that names no failing step, for
/// support and the admin: for `probe_error` the erroring checks and their
/// messages ("name: message; …"), for `no_data` the checks without a
/// result. Empty for the other causes (their checks carry the evidence).
pub fn detail_of(cause: Cause, checks: &[proto::CheckResult]) -> String {
    let mut checks: Vec<&proto::CheckResult> = checks.iter().collect();
    checks.sort_by_key(|check| (check.runbook_step, check.name.clone()));
    match cause {
        Cause::ProbeError => checks
            .iter()
            .filter(|check| is_erroring(check))
            .map(|check| {
                let message = if check.message.is_empty() {
                    "no status reported"
                } else {
                    check.message.as_str()
                };
                format!("{}: {message}", check.name)
            })
            .collect::<Vec<_>>()
            .join("; "),
        Cause::NoData if checks.is_empty() => "the probe has reported no check results".into(),
        Cause::NoData => format!("no result for: {}", missing_checks(&checks).join(", ")),
        _ => String::new(),
    }
}

/// [`detail_of`] and [`conflict_detail`] as a catalogue code and its
/// parameters (`detail-CODE` in `locales/*.ftl`), so the report says them in
/// the admin's language; empty code when there is nothing to say. A
/// `probe_error`'s erroring checks carry their own coded messages.
pub fn coded_detail(
    cause: Cause,
    checks: &[proto::CheckResult],
    product: &proto::ProductSummary,
    claimants: &[String],
) -> (String, std::collections::BTreeMap<String, String>) {
    let pairs: Vec<(&str, String)> = match cause {
        Cause::UpdateAgentConflict if !claimants.is_empty() => {
            return (
                "conflict".into(),
                [
                    ("count".to_string(), claimants.len().to_string()),
                    ("address".to_string(), product.source_address.clone()),
                    ("claimants".to_string(), claimants.join(", ")),
                ]
                .into(),
            );
        }
        Cause::NoData if checks.is_empty() => return ("no-results".into(), Default::default()),
        Cause::NoData => {
            let sorted: Vec<&proto::CheckResult> = checks.iter().collect();
            vec![("checks", missing_checks(&sorted).join(", "))]
        }
        _ => return (String::new(), Default::default()),
    };
    (
        "missing-checks".into(),
        pairs
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    )
}

/// The update agent's reason for blocking its clients as a catalogue code
/// (`detail-update-agent-CODE`).
pub fn blocking_code(update_agent: &UpdateAgentView) -> Option<&'static str> {
    if !update_agent.online {
        Some("offline")
    } else if !update_agent.program_and_hotfix {
        Some("lacks-program")
    } else if !update_agent.at_target {
        Some("behind")
    } else {
        None
    }
}

/// The detail of a client blocked by its update agent, naming it (by
/// `name`, its hostname where the caller knows it): English text, catalogue
/// code and parameters. `None` when the update agent does not block.
pub fn update_agent_detail(
    update_agent: &UpdateAgentView,
    name: &str,
) -> Option<(String, String, std::collections::BTreeMap<String, String>)> {
    let code = blocking_code(update_agent)?;
    let reason = update_agent.blocking().unwrap_or_default();
    Some((
        format!("{reason}: {name}"),
        format!("update-agent-{code}"),
        [("update_agent".to_string(), name.to_string())].into(),
    ))
}

/// The parameter `name` of part `index` of a check's coded message (parts
/// are prefixed by their index when there are several).
fn part_param<'a>(check: &'a proto::CheckResult, parts: usize, index: usize, name: &str) -> Option<&'a str> {
    let key = if parts == 1 {
        name.to_string()
    } else {
        format!("{index}.{name}")
    };
    check.params.get(&key).map(String::as_str)
}

/// A failing connectivity check whose every failing part is the update
/// source being unreachable.
fn fails_only_toward_the_update_source(check: &proto::CheckResult) -> bool {
    if check.name != rollcall_common::checks::CONNECTIVITY
        || status_of(check) != CheckStatus::Fail
        || check.code.is_empty()
    {
        return false;
    }
    let codes: Vec<&str> = check.code.split(',').collect();
    codes.iter().enumerate().all(|(index, code)| {
        *code == "connectivity-unreachable" && part_param(check, codes.len(), index, "service") == Some("update_source")
    })
}

/// The names of a client's failing checks that follow from its blocking
/// update agent rather than being faults of their own: with the update
/// agent offline, its clients cannot reach their update source (it). Empty
/// when the client pulls from no update agent, or it does not block.
pub fn consequences(checks: &[proto::CheckResult], update_agent: Option<&UpdateAgentView>) -> Vec<String> {
    let Some(update_agent) = update_agent else {
        return Vec::new();
    };
    if update_agent.online {
        return Vec::new();
    }
    checks
        .iter()
        .filter(|check| fails_only_toward_the_update_source(check))
        .map(|check| check.name.clone())
        .collect()
}

/// An update agent whose `update_source` check failed because it does not
/// serve "Security agent program and HotFix" (the probe's code for that
/// part; an uncoded result from an older probe is judged by the product
/// facts it sent).
fn lacks_program(facts: &Facts<'_>, check: &proto::CheckResult) -> bool {
    if check.name != rollcall_common::checks::UPDATE_SOURCE || status_of(check) != CheckStatus::Fail {
        return false;
    }
    if check.code.is_empty() {
        return facts.product.role == proto::Role::UpdateAgent as i32 && !facts.product.program_and_hotfix;
    }
    check.code.split(',').any(|code| code == "update-agent-lacks-program")
}

/// Diagnoses an agent that is behind the target.
pub fn diagnose(facts: &Facts<'_>, update_agents: &UpdateAgentIndex) -> Diagnosis {
    let mut checks: Vec<&proto::CheckResult> = facts.checks.iter().collect();
    checks.sort_by_key(|check| (check.runbook_step, check.name.clone()));
    let failed: Vec<&proto::CheckResult> = checks
        .iter()
        .copied()
        .filter(|check| status_of(check) == CheckStatus::Fail)
        .collect();
    let any_erroring = checks.iter().any(|check| is_erroring(check));
    let update_agent = update_agent_of(facts.product, update_agents);
    let blocking_update_agent = update_agent.filter(|ua| ua.blocking().is_some());
    let consequences = consequences(facts.checks, blocking_update_agent);
    let failing = checks
        .iter()
        .filter(|check| status_of(check) == CheckStatus::Fail || is_erroring(check))
        .filter(|check| !consequences.contains(&check.name))
        .map(|check| check.name.clone())
        .collect();
    let claimants = claimants_of(facts.product, update_agents);

    // Steps that failed: only these may be named (a consequence of the
    // blocking update agent is its step, not one of its own).
    let mut causes: Vec<Cause> = failed
        .iter()
        .filter(|check| !consequences.contains(&check.name))
        .filter_map(|check| match Cause::of_check(&check.name) {
            Some(Cause::UpdateSource) if lacks_program(facts, check) => Some(Cause::UpdateAgentProgram),
            other => other,
        })
        .collect();
    if blocking_update_agent.is_some() {
        causes.push(Cause::UpdateAgent);
    }
    if !claimants.is_empty() {
        causes.push(Cause::UpdateAgentConflict);
    }
    if !facts.online {
        causes.push(Cause::Offline);
    }
    // Signals read on the endpoint count like failed checks.
    causes.extend(
        facts
            .signals
            .iter()
            .filter(|signal| !signal.inferred)
            .map(|signal| signal.kind.cause()),
    );
    let inferred = facts.signals.iter().find(|signal| signal.inferred);
    let (cause, detail) = if let Some(cause) = causes.into_iter().min() {
        let detail = match (cause, blocking_update_agent) {
            (Cause::UpdateAgentConflict, _) => conflict_detail(facts.product, &claimants),
            (Cause::UpdateAgent, Some(ua)) => update_agent_detail(ua, &ua.id)
                .map(|(text, _, _)| text)
                .unwrap_or_default(),
            _ => String::new(),
        };
        (cause, detail)
    } else if let Some(signal) = inferred {
        // Only when nothing read explains the straggler: a check that could
        // not run (update.permission missing) is what the inference fills.
        (signal.kind.cause(), String::new())
    } else if any_erroring {
        (Cause::ProbeError, detail_of(Cause::ProbeError, facts.checks))
    } else {
        not_failing(facts, &checks)
    };
    let (is_inferred, evidence) = evidence_for(cause, facts.signals, facts.checks);
    let signal = facts
        .signals
        .iter()
        .find(|signal| signal.kind.cause() == cause && (signal.inferred == is_inferred || !signal.inferred))
        .map(|signal| signal.kind);
    Diagnosis {
        cause,
        failing,
        update_agent: update_agent.map(|ua| ua.id.clone()),
        detail,
        inferred: is_inferred,
        evidence,
        signal,
    }
}

/// The cause when no step failed and every reported check ran: `no_data`,
/// `awaiting_recheck` or, with steps 1–6 excluded on fresh facts, `unknown`.
fn not_failing(facts: &Facts<'_>, checks: &[&proto::CheckResult]) -> (Cause, String) {
    if !missing_checks(checks).is_empty() {
        return (Cause::NoData, detail_of(Cause::NoData, facts.checks));
    }
    if facts.rechecks_sent == 0 {
        return (
            Cause::AwaitingRecheck,
            "every check passes; no recheck has been sent yet".into(),
        );
    }
    if facts.checks_observed_at_ms < facts.last_recheck_at_ms {
        return (
            Cause::AwaitingRecheck,
            "every check passes, on a check run observed before the last recheck".into(),
        );
    }
    (
        Cause::Unknown,
        format!(
            "every check of steps 1-6 passed after {} recheck(s)",
            facts.rechecks_sent
        ),
    )
}

#[cfg(test)]
mod tests;
