//! Runbook step 8: "does Update Now on the agent fix it?" and "does a
//! manual update notification from the server fix it?", judged from what
//! the agents reported afterwards (issue 16 point 5), never from an exit
//! code or from the command's own answer alone.
//!
//! Counted per agent, not per event: an agent sent the notification twice
//! is one agent that tried. An agent **tried** when it ran Update Now (an
//! accepted `update_now` command, or an agent-side Update Now report); it
//! **completed** when a report it sent afterwards (by the coordinator's
//! receive time) within the policy's `update_now_window` shows the target
//! version. An agent that only refused (its config has no
//! `update_command`, or the command had expired or found it busy) is
//! **refused**, not tried. An agent already completed in the rollout when
//! its Update Now came is neither: it says nothing about whether it helps.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::report::{Tried, UpdateNow};

use crate::rollouts::engine::at_target;
use crate::store::{CommandRow, ReportMeta, Store, StoreResult, TransitionRow};

/// What one agent did with Update Now on one side.
#[derive(Debug, Default)]
struct Attempts {
    /// When it ran one (coordinator receive or delivery time).
    ran_at_ms: Vec<i64>,
    refused: bool,
}

/// The rollout's facts the outcome is judged from.
pub struct Inputs<'a> {
    pub target: &'a str,
    pub members: &'a HashSet<&'a str>,
    /// The rollout's transitions, oldest first.
    pub transitions: &'a [TransitionRow],
    /// Every command of the rollout.
    pub commands: &'a [CommandRow],
    /// Agent-side Update Now reports since the rollout started.
    pub agent_side: &'a [ReportMeta],
    pub window_ms: i64,
}

/// Counts both sides, reading the reports that followed each Update Now.
pub async fn outcomes(store: &dyn Store, inputs: Inputs<'_>) -> StoreResult<UpdateNow> {
    let completed_at = first_completions(inputs.transitions);
    let behind_at = |agent: &str, at_ms: i64| completed_at.get(agent).is_none_or(|&done| done > at_ms);

    let mut server: BTreeMap<&str, Attempts> = BTreeMap::new();
    for command in inputs
        .commands
        .iter()
        .filter(|command| command.kind == proto::CommandKind::UpdateNow as i32)
        .filter(|command| inputs.members.contains(command.agent_id.as_str()))
    {
        let Some(delivered_at) = command.delivered_at_ms else {
            continue;
        };
        let attempts = server.entry(command.agent_id.as_str()).or_default();
        if command.receipt.is_refused() && command.answered_at_ms.is_none() {
            attempts.refused = true;
        } else if behind_at(&command.agent_id, delivered_at) {
            attempts.ran_at_ms.push(delivered_at);
        }
    }
    let mut agent: BTreeMap<&str, Attempts> = BTreeMap::new();
    for report in inputs
        .agent_side
        .iter()
        .filter(|report| inputs.members.contains(report.agent_id.as_str()))
    {
        let attempts = agent.entry(report.agent_id.as_str()).or_default();
        if report.update_now_refused {
            attempts.refused = true;
        } else if behind_at(&report.agent_id, report.received_at_ms) {
            attempts.ran_at_ms.push(report.received_at_ms);
        }
    }

    let windows = merged_windows(
        server
            .values()
            .chain(agent.values())
            .flat_map(|attempts| attempts.ran_at_ms.iter().copied()),
        inputs.window_ms,
    );
    let mut at_target_by_agent: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (from, to) in windows {
        for report in store.reports_received(from, to).await? {
            if at_target(&report.version, inputs.target) {
                at_target_by_agent
                    .entry(report.agent_id)
                    .or_default()
                    .push(report.received_at_ms);
            }
        }
    }
    let helped = |agent_id: &str, attempts: &Attempts| {
        at_target_by_agent.get(agent_id).is_some_and(|reached| {
            attempts.ran_at_ms.iter().any(|&ran| {
                reached
                    .iter()
                    .any(|&at| at >= ran && at <= ran.saturating_add(inputs.window_ms))
            })
        })
    };
    let tally = |side: &BTreeMap<&str, Attempts>| {
        let mut tried = Tried::default();
        for (agent_id, attempts) in side {
            if !attempts.ran_at_ms.is_empty() {
                tried.tried += 1;
                if helped(agent_id, attempts) {
                    tried.completed += 1;
                }
            } else if attempts.refused {
                tried.refused += 1;
            }
        }
        tried
    };
    Ok(UpdateNow {
        agent_side: tally(&agent),
        server_side: tally(&server),
        window_ms: u64::try_from(inputs.window_ms).unwrap_or(0),
    })
}

/// When each agent first completed the rollout (its first transition to
/// `completed`).
fn first_completions(transitions: &[TransitionRow]) -> BTreeMap<&str, i64> {
    let mut first = BTreeMap::new();
    for transition in transitions
        .iter()
        .filter(|t| MemberState::from_word(&t.to_state) == Some(MemberState::Completed))
    {
        first.entry(transition.agent_id.as_str()).or_insert(transition.at_ms);
    }
    first
}

/// The windows `[t, t + window]` of every attempt, overlapping ones merged,
/// so the reports that followed are read in as few ranges as possible.
fn merged_windows(starts: impl Iterator<Item = i64>, window_ms: i64) -> Vec<(i64, i64)> {
    let starts: BTreeSet<i64> = starts.collect();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for start in starts {
        let end = start.saturating_add(window_ms);
        match merged.last_mut() {
            Some((_, last_end)) if start <= *last_end => *last_end = (*last_end).max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_are_read_once() {
        assert_eq!(
            merged_windows([100, 10, 50, 500].into_iter(), 60),
            [(10, 160), (500, 560)]
        );
        assert!(merged_windows(std::iter::empty(), 60).is_empty());
    }

    #[test]
    fn an_agent_completes_the_rollout_when_it_first_says_so() {
        let transition = |agent: &str, at_ms: i64, to: &str| TransitionRow {
            rollout_id: "r".into(),
            agent_id: agent.into(),
            at_ms,
            from_state: String::new(),
            to_state: to.into(),
            cause: String::new(),
        };
        let transitions = [
            transition("a", 1, "pending"),
            transition("a", 5, "completed"),
            transition("a", 9, "completed"),
            transition("b", 3, "straggler_soft"),
        ];
        let first = first_completions(&transitions);
        assert_eq!(first.get("a"), Some(&5));
        assert_eq!(first.get("b"), None);
    }
}
