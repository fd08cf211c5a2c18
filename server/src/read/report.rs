//! The support report of runbook step 8, written from what the coordinator
//! recorded:
//! - how many machines are affected ("N of M"), overall and per label value;
//! - whether each update agent finished upgrading itself, and how many
//!   clients it blocks;
//! - what sets affected agents apart from the others: for every recorded
//!   attribute, the values markedly more frequent among stragglers than
//!   among completed agents, ranked by how well they separate the groups;
//! - the outcome of agent-side "Update Now" and server-side update
//!   notifications, in agents: how many ran it, how many then reported the
//!   target, how many refused ([`update_now`]);
//! - the agents whose clock is flagged ([`crate::domain::clock_skew`]);
//! - per straggler: cause, failing checks with evidence, remediation.
//!
//! [`Report`] is the JSON contract (`rollcall report --output json`);
//! rendering to Markdown happens where the language is known ([`markdown`]);
//! both live in `rollcall_common::report`, this module computes it.
//!
//! Longer than ~400 lines: one report's computation, its parts in the
//! report's order; the update-now part is apart (`report/update_now.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rollcall_common::member_state::severity_word;
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use tonic::Status;

use crate::rollouts::diagnosis::Cause;
use crate::rollouts::engine::at_target;
use crate::rollouts::fleet::AgentView;
use crate::rollouts::rollout_view::RolloutView;
use crate::state::Coordinator;

pub mod update_now;

#[cfg(test)]
mod bench;

// The report's data types (the JSON contract) and its Markdown rendering
// live in common: the admin CLI reads and renders them without this crate.
pub use rollcall_common::report::*;

/// A difference must separate the groups by at least this share.
const MIN_SEPARATION: f64 = 0.2;
/// Differences listed at most.
const MAX_DIFFERENCES: usize = 25;

use rollcall_common::proto::status_word;

/// Every attribute value recorded for an agent (the differential's input).
fn attributes(view: &AgentView, checks: &[proto::CheckResult]) -> Vec<(String, String)> {
    let row = &view.row;
    let mut out = vec![
        (
            "os".to_string(),
            format!("{} {}", row.host.os_id, row.host.os_version).trim().to_string(),
        ),
        ("os_id".to_string(), row.host.os_id.clone()),
        ("arch".to_string(), row.host.arch.clone()),
        (
            "role".to_string(),
            rollcall_common::proto::role_name(row.role).to_string(),
        ),
        ("update_source".to_string(), row.product.update_source.clone()),
        ("source_address".to_string(), row.product.source_address.clone()),
        ("update_permission".to_string(), row.product.update_permission.clone()),
        ("probe_version".to_string(), row.agent_version.clone()),
        ("online".to_string(), (!view.offline).to_string()),
    ];
    for (key, value) in &row.labels {
        out.push((format!("label:{key}"), value.clone()));
    }
    for check in checks {
        if check.name == "version" {
            continue;
        }
        out.push((format!("check:{}", check.name), status_word(check.status).to_string()));
        for evidence in &check.evidence {
            if check.name == "certificates" && evidence.key == "missing" {
                for name in evidence.value.split(", ").filter(|name| !name.is_empty()) {
                    out.push(("missing_certificate".to_string(), name.to_string()));
                }
            }
        }
    }
    out.retain(|(_, value)| !value.is_empty());
    let mut seen = HashSet::new();
    out.retain(|pair| seen.insert(pair.clone()));
    out
}

/// The attribute values that set stragglers apart, best separating first.
pub fn differences(stragglers: &[Vec<(String, String)>], completed: &[Vec<(String, String)>]) -> Vec<Difference> {
    let count = |group: &[Vec<(String, String)>]| {
        let mut counts: HashMap<(String, String), u32> = HashMap::new();
        for attributes in group {
            for pair in attributes {
                *counts.entry(pair.clone()).or_default() += 1;
            }
        }
        counts
    };
    let (straggler_counts, completed_counts) = (count(stragglers), count(completed));
    let (s_total, c_total) = (stragglers.len() as u32, completed.len() as u32);
    let share = |n: u32, total: u32| {
        if total == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(total)
        }
    };
    let mut list: Vec<Difference> = straggler_counts
        .iter()
        .filter_map(|((attribute, value), &s)| {
            let c = completed_counts
                .get(&(attribute.clone(), value.clone()))
                .copied()
                .unwrap_or(0);
            let separation = share(s, s_total) - share(c, c_total);
            (separation >= MIN_SEPARATION).then(|| Difference {
                attribute: attribute.clone(),
                value: value.clone(),
                stragglers: s,
                completed: c,
                stragglers_total: s_total,
                completed_total: c_total,
                separation: (separation * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    list.sort_by(|a, b| {
        b.separation
            .total_cmp(&a.separation)
            .then(b.stragglers.cmp(&a.stragglers))
            .then(a.attribute.cmp(&b.attribute))
            .then(a.value.cmp(&b.value))
    });
    list.truncate(MAX_DIFFERENCES);
    list
}

/// Builds the report for a rollout (default: the current one).
pub async fn build(coordinator: &Arc<Coordinator>, rollout_id: Option<&str>) -> Result<Report, Status> {
    let rollout = crate::read::rollouts::resolve(coordinator, rollout_id.unwrap_or("")).await?;
    // Transitions are read below, after the commands they are matched with.
    let rollout_view = RolloutView::load(coordinator, rollout, false)
        .await
        .map_err(Status::from)?;
    let rollout = rollout_view.rollout();
    // Claims are read from the whole fleet: a claimant may be outside the rollout.
    let update_agent_claims = crate::rollouts::engine::index_update_agents(rollout_view.fleet(), &rollout.target);
    let views: Vec<&AgentView> = rollout_view.members().map(|(agent, _)| agent).collect();
    // Every member's latest checks in one query (a few past 50,000 members).
    let checks_by_agent: HashMap<String, Vec<proto::CheckResult>> = coordinator
        .store
        .latest_checks_of(views.iter().map(|view| view.row.id.clone()).collect())
        .await
        .map_err(Status::from)?;
    let is_completed = |view: &AgentView| view.member.as_ref().is_some_and(|m| m.state.is_completed());
    let is_straggler = |view: &AgentView| view.member.as_ref().is_some_and(|m| m.state.is_straggler());
    let counts = rollout_view.counts();
    let total = counts.total;
    let affected_count = counts.total - counts.completed;

    // Per label value: members not completed, and all members.
    let affected_by_label = rollout_view
        .by_label()
        .into_iter()
        .flat_map(|(label, values)| {
            values.into_iter().map(move |(value, counts)| LabelAffected {
                label: label.to_string(),
                value: value.to_string(),
                count: counts.total - counts.completed,
                total: counts.total,
            })
        })
        .collect();

    let update_agents: Vec<UpdateAgentEntry> = views
        .iter()
        .filter(|view| view.row.role == proto::Role::UpdateAgent as i32)
        .map(|view| UpdateAgentEntry {
            id: view.row.id.clone(),
            hostname: view.row.hostname.clone(),
            address: view.row.product.update_agent_address.clone(),
            completed: at_target(&view.row.product.version, &rollout.target),
            version: (!view.row.product.version.is_empty()).then(|| view.row.product.version.clone()),
            program_and_hotfix: view.row.product.program_and_hotfix,
            online: !view.offline,
            blocks: view.member.as_ref().map(|m| m.blocks).unwrap_or(0),
            contested_by: match update_agent_claims.claim(&view.row.product.update_agent_address) {
                Some(crate::rollouts::diagnosis::Claim::Contested(claimants)) => claimants
                    .iter()
                    .filter(|claimant| claimant.id != view.row.id)
                    .map(|claimant| claimant.id.clone())
                    .collect(),
                _ => Vec::new(),
            },
        })
        .collect();

    let empty = Vec::new();
    let attrs = |view: &AgentView| attributes(view, checks_by_agent.get(&view.row.id).unwrap_or(&empty));
    let straggler_attrs: Vec<_> = views.iter().copied().filter(|v| is_straggler(v)).map(attrs).collect();
    let completed_attrs: Vec<_> = views.iter().copied().filter(|v| is_completed(v)).map(attrs).collect();
    let differences = differences(&straggler_attrs, &completed_attrs);

    // Update-now outcomes since the rollout started, from later reports.
    let members: HashSet<&str> = views.iter().map(|view| view.row.id.as_str()).collect();
    let agent_side = coordinator
        .store
        .reports_meta(proto::ReportKind::UpdateNowAgent as i32, rollout.started_at_ms)
        .await
        .map_err(Status::from)?;
    let commands = coordinator
        .store
        .rollout_commands(&rollout.id)
        .await
        .map_err(Status::from)?;
    let transitions = coordinator.store.transitions(&rollout.id).await.map_err(Status::from)?;
    let policy = coordinator.current_policy();
    let update_now = update_now::outcomes(
        coordinator.store.as_ref(),
        update_now::Inputs {
            target: &rollout.target,
            members: &members,
            transitions: &transitions,
            commands: &commands,
            agent_side: &agent_side,
            window_ms: i64::try_from(policy.update_now_window().as_millis()).unwrap_or(i64::MAX),
        },
    )
    .await
    .map_err(Status::from)?;
    let clock_skew_flagged = views
        .iter()
        .filter(|view| crate::domain::clock_skew::flagged(view.row.clock_skew_ms, policy.clock_skew_warn()))
        .map(|view| SkewedClock {
            id: view.row.id.clone(),
            hostname: view.row.hostname.clone(),
            clock_skew_ms: view.row.clock_skew_ms,
        })
        .collect();

    // The newest complete log bundle of each agent (only the newest is kept).
    let mut bundles: HashMap<String, BundleRef> = HashMap::new();
    for row in coordinator.store.list_bundles().await.map_err(Status::from)? {
        let Some(completed_at_ms) = row.completed_at_ms else {
            continue;
        };
        bundles.insert(
            row.agent_id.clone(),
            BundleRef {
                command_id: row.command_id,
                collected_at: rfc3339(completed_at_ms),
                bytes: row.bytes,
                files: row.files,
                skipped: row.skipped,
            },
        );
    }

    let policy = coordinator.current_policy();
    let signal_context = rollout_view.signal_context(&policy, rollcall_common::timefmt::now_ms());
    let hostnames: HashMap<&str, &str> = rollout_view
        .fleet()
        .iter()
        .map(|agent| (agent.row.id.as_str(), agent.row.hostname.as_str()))
        .collect();
    let mut stragglers: Vec<StragglerEntry> = Vec::new();
    for view in views.iter().filter(|v| is_straggler(v)) {
        let Some(member) = &view.member else { continue };
        let checks = checks_by_agent.get(&view.row.id).unwrap_or(&empty);
        let claimants = if member.cause == Cause::UpdateAgentConflict.code() {
            crate::rollouts::diagnosis::claimants_of(&view.row.product, &update_agent_claims)
        } else {
            Vec::new()
        };
        let detail = if claimants.is_empty() {
            Cause::from_code(&member.cause)
                .map(|cause| crate::rollouts::diagnosis::detail_of(cause, checks))
                .unwrap_or_default()
        } else {
            crate::rollouts::diagnosis::conflict_detail(&view.row.product, &claimants)
        };
        let (mut detail_code, mut detail_params) = match Cause::from_code(&member.cause) {
            Some(cause) => crate::rollouts::diagnosis::coded_detail(cause, checks, &view.row.product, &claimants),
            None => (String::new(), BTreeMap::new()),
        };
        let mut explained = proto::Straggler {
            cause: member.cause.clone(),
            ..Default::default()
        };
        crate::rollouts::rollout_view::explain(&mut explained, view, checks, &policy, &signal_context);
        let mut detail = detail;
        // A client its update agent blocks: the update agent is the failing
        // fact (named by hostname), and what follows from it is no fault of
        // the client's own.
        let blocking_update_agent =
            crate::rollouts::diagnosis::update_agent_of(&view.row.product, &update_agent_claims)
                .filter(|update_agent| update_agent.blocking().is_some());
        let consequences = crate::rollouts::diagnosis::consequences(checks, blocking_update_agent);
        if member.cause == Cause::UpdateAgent.code()
            && let Some(update_agent) = blocking_update_agent
        {
            let name = hostnames
                .get(update_agent.id.as_str())
                .copied()
                .unwrap_or(update_agent.id.as_str());
            if let Some((text, code, params)) = crate::rollouts::diagnosis::update_agent_detail(update_agent, name) {
                detail = text;
                detail_code = code;
                detail_params = params;
            }
        }
        let (consequence_checks, failing): (Vec<FailingCheck>, Vec<FailingCheck>) = checks
            .iter()
            .filter(|check| matches!(status_word(check.status), "fail" | "error"))
            .map(FailingCheck::from)
            .partition(|check| consequences.contains(&check.name));
        stragglers.push(StragglerEntry {
            inferred: explained.inferred,
            evidence: explained.evidence,
            signal: explained.signal,
            detail,
            detail_code,
            detail_params,
            bundle: bundles.remove(&view.row.id),
            update_agent_claimants: claimants,
            id: view.row.id.clone(),
            hostname: view.row.hostname.clone(),
            cause: member.cause.clone(),
            runbook_step: Cause::step_of_code(&member.cause),
            state: severity_word(member.state.hard_flag()).into(),
            update_agent: (!member.update_agent.is_empty()).then(|| member.update_agent.clone()),
            blocks: member.blocks,
            failing,
            consequences: consequence_checks,
        });
    }
    stragglers.sort_by(|a, b| {
        (b.blocks, Cause::rank(&a.cause), &a.hostname).cmp(&(a.blocks, Cause::rank(&b.cause), &b.hostname))
    });

    let roster = crate::roster::RosterView::load(coordinator, rollout_view.fleet())
        .await
        .map_err(Status::from)?
        .map(|roster| {
            let counts = roster.counts(rollout_view.fleet(), &rollout.target);
            rollcall_common::report::RosterAffected {
                source: roster.status.source.clone(),
                listed: counts.listed,
                probed: counts.probed,
                completed: counts.completed,
                behind: counts.behind,
                no_probe: counts.no_probe,
                unlisted_probes: counts.unlisted_probes,
                ambiguous: counts.ambiguous,
                age_s: counts.age_s,
            }
        });
    Ok(Report {
        rollout: ReportRollout {
            id: rollout.id.clone(),
            target: rollout.target.clone(),
            started_at: rfc3339(rollout.started_at_ms),
            state: if rollout.cancelled_at_ms.is_some() {
                "cancelled"
            } else {
                "active"
            }
            .into(),
        },
        generated_at: rfc3339(now_ms()),
        affected: Affected {
            count: affected_count,
            total,
        },
        affected_by_label,
        fleet_cause: rollout_view.fleet_cause().map(|cause| cause.code().to_string()),
        by_cause: rollout_view.by_cause(),
        update_agents,
        differences,
        update_now,
        stragglers,
        awaiting_restart: views
            .iter()
            .filter(|view| {
                view.member
                    .as_ref()
                    .is_some_and(|member| member.state == rollcall_common::member_state::MemberState::AwaitingRestart)
            })
            .map(|view| rollcall_common::report::AwaitingRestartEntry {
                id: view.row.id.clone(),
                hostname: view.row.hostname.clone(),
                version: (!view.row.product.version.is_empty()).then(|| view.row.product.version.clone()),
                marker: view.row.product.restart_pending.clone(),
            })
            .collect(),
        clock_skew_flagged,
        roster,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, v)| (a.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_distinguishing_value_ranks_first() {
        let mut stragglers = vec![attrs(&[("source_address", "ua-osaka:8080"), ("os", "debian 12")]); 37];
        stragglers.extend(vec![
            attrs(&[("source_address", "ua-kobe:8080"), ("os", "debian 12")]);
            3
        ]);
        let completed = vec![attrs(&[("source_address", "ua-kobe:8080"), ("os", "debian 12")]); 960];
        let list = differences(&stragglers, &completed);
        assert_eq!(list[0].attribute, "source_address");
        assert_eq!(list[0].value, "ua-osaka:8080");
        assert_eq!((list[0].stragglers, list[0].completed), (37, 0));
        assert!(
            list.iter().all(|d| d.attribute != "os"),
            "shared values are no difference: {list:?}"
        );
    }

    #[test]
    fn no_completed_agents_still_reports() {
        let list = differences(&[attrs(&[("arch", "x86_64")])], &[]);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].completed_total, 0);
    }
}
