//! The read model of one rollout: its row and one fleet snapshot (plus its
//! transitions when history is asked), from which the admin API's status
//! and stragglers, the dashboard, `/metrics` and the report all count. One
//! page or call reads the store once, and every front end counts the same
//! way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::timefmt::rfc3339;

use crate::rollouts::diagnosis::{Cause, SignalContext, fleet_cause};
use crate::rollouts::fleet::{AgentView, snapshot};
use crate::state::Coordinator;
use crate::store::{MemberRow, RolloutRow, StoreResult, TransitionRow};

/// Members of a rollout per state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub total: u32,
    pub completed: u32,
    pub pending: u32,
    pub stragglers: u32,
    pub soft: u32,
    pub hard: u32,
    /// Not completed and not seen within the policy's `offline_after`.
    pub offline: u32,
    /// Upgrade installed, waiting for a restart.
    pub awaiting_restart: u32,
}

impl Counts {
    pub fn add(&mut self, view: &AgentView, member: &MemberRow) {
        self.total += 1;
        match member.state {
            MemberState::Completed => self.completed += 1,
            MemberState::Straggler { hard } => {
                self.stragglers += 1;
                if hard {
                    self.hard += 1;
                } else {
                    self.soft += 1;
                }
            }
            MemberState::Pending => self.pending += 1,
            MemberState::AwaitingRestart => self.awaiting_restart += 1,
        }
        if view.offline && !member.state.is_completed() {
            self.offline += 1;
        }
    }

    pub fn percent_completed(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * f64::from(self.completed) / f64::from(self.total)
        }
    }
}

/// One rollout as read at one moment.
#[derive(Debug, Clone)]
pub struct RolloutView {
    rollout: RolloutRow,
    /// The whole fleet, members and not: an update agent may claim an
    /// address outside the rollout.
    fleet: Vec<AgentView>,
    /// Read only when history is asked (it grows with the rollout).
    transitions: Option<Vec<TransitionRow>>,
}

impl RolloutView {
    /// Reads one snapshot of the fleet with the rollout's membership, and
    /// its transitions when `with_history`.
    pub async fn load(coordinator: &Arc<Coordinator>, rollout: RolloutRow, with_history: bool) -> StoreResult<Self> {
        let fleet = snapshot(coordinator, Some(&rollout)).await?;
        let transitions = if with_history {
            Some(coordinator.store.transitions(&rollout.id).await?)
        } else {
            None
        };
        Ok(Self::new(rollout, fleet, transitions))
    }

    /// A view over rows already read (tests build one without a store).
    pub fn new(rollout: RolloutRow, fleet: Vec<AgentView>, transitions: Option<Vec<TransitionRow>>) -> Self {
        RolloutView {
            rollout,
            fleet,
            transitions,
        }
    }

    pub fn rollout(&self) -> &RolloutRow {
        &self.rollout
    }

    /// Every agent, members and not.
    pub fn fleet(&self) -> &[AgentView] {
        &self.fleet
    }

    /// The rollout's members, in snapshot order.
    pub fn members(&self) -> impl Iterator<Item = (&AgentView, &MemberRow)> {
        self.fleet
            .iter()
            .filter_map(|view| view.member.as_ref().map(|member| (view, member)))
    }

    /// Members per state.
    pub fn counts(&self) -> Counts {
        self.counts_where(|_| true)
    }

    /// Members per state among those `scope` keeps.
    pub fn counts_where(&self, scope: impl Fn(&AgentView) -> bool) -> Counts {
        let mut counts = Counts::default();
        for (view, member) in self.members().filter(|(view, _)| scope(view)) {
            counts.add(view, member);
        }
        counts
    }

    /// Stragglers per cause code.
    pub fn by_cause(&self) -> BTreeMap<String, u32> {
        self.by_cause_where(|_| true)
    }

    /// Stragglers per cause code among the members `scope` keeps.
    pub fn by_cause_where(&self, scope: impl Fn(&AgentView) -> bool) -> BTreeMap<String, u32> {
        let mut by_cause = BTreeMap::new();
        for (_, member) in self
            .members()
            .filter(|(view, member)| member.state.is_straggler() && scope(view))
        {
            *by_cause.entry(member.cause.clone()).or_default() += 1;
        }
        by_cause
    }

    /// The cause common to the stragglers, if there is one (see
    /// [`fleet_cause`]).
    pub fn fleet_cause(&self) -> Option<Cause> {
        fleet_cause(
            self.members()
                .filter(|(_, member)| member.state.is_straggler())
                .map(|(_, member)| member.cause.as_str()),
        )
    }

    /// Members per state for every value of every label key (key, then
    /// value, in order).
    pub fn by_label(&self) -> BTreeMap<&str, BTreeMap<&str, Counts>> {
        let mut groups: BTreeMap<&str, BTreeMap<&str, Counts>> = BTreeMap::new();
        for (view, member) in self.members() {
            for (key, value) in &view.row.labels {
                groups
                    .entry(key.as_str())
                    .or_default()
                    .entry(value.as_str())
                    .or_default()
                    .add(view, member);
            }
        }
        groups
    }

    /// The rollout's transitions, when the view was read with history.
    pub fn transitions(&self) -> Option<&[TransitionRow]> {
        self.transitions.as_deref()
    }

    /// Completion over time, when the view was read with history.
    pub fn history(&self) -> Option<Vec<proto::HistoryPoint>> {
        self.history_where(|_| true)
    }

    /// Completion over time of the agents `scope` keeps (by agent id).
    pub fn history_where(&self, scope: impl Fn(&str) -> bool) -> Option<Vec<proto::HistoryPoint>> {
        let transitions = self.transitions.as_ref()?;
        Some(history(
            transitions.iter().filter(|transition| scope(&transition.agent_id)),
        ))
    }

    /// The stragglers as the admin API lists them: update agents first
    /// (most blocked clients first), then runbook order, then hostname;
    /// causes that name no step come after step 7.
    pub fn stragglers(&self) -> Vec<proto::Straggler> {
        // Claims are read from the whole fleet, not only the members.
        let update_agents = crate::rollouts::engine::index_update_agents(&self.fleet, &self.rollout.target);
        let mut list: Vec<proto::Straggler> = self
            .members()
            .filter_map(|(view, member)| {
                let severity = member.state.severity()?;
                Some(proto::Straggler {
                    update_agent_claimants: if member.cause == Cause::UpdateAgentConflict.code() {
                        crate::rollouts::diagnosis::claimants_of(&view.row.product, &update_agents)
                    } else {
                        Vec::new()
                    },
                    id: view.row.id.clone(),
                    hostname: view.row.hostname.clone(),
                    cause: member.cause.clone(),
                    runbook_step: Cause::step_of_code(&member.cause),
                    state: severity.into(),
                    since: rfc3339(member.since_ms),
                    blocks: member.blocks,
                    update_agent: member.update_agent.clone(),
                    failing: member.failing.clone(),
                    role: view.row.role,
                    online: view.connected,
                    version: view.row.product.version.clone(),
                    attempts: member.attempts,
                    probe: true,
                    ..Default::default()
                })
            })
            .collect();
        list.sort_by(|a, b| {
            let ua = |s: &proto::Straggler| s.role != proto::Role::UpdateAgent as i32;
            (ua(a), std::cmp::Reverse(a.blocks), Cause::rank(&a.cause), &a.hostname).cmp(&(
                ua(b),
                std::cmp::Reverse(b.blocks),
                Cause::rank(&b.cause),
                &b.hostname,
            ))
        });
        list
    }

    /// What the signals read against: the policy, the fleet's certificate
    /// majority (from the whole fleet), the target and the clock.
    pub fn signal_context(&self, policy: &rollcall_common::policy::Policy, now_ms: i64) -> SignalContext {
        SignalContext::new(
            policy,
            &self.rollout.target,
            now_ms,
            self.fleet.iter().map(|view| &view.row.product),
        )
    }

    /// The agent of a straggler, by id.
    pub fn agent(&self, id: &str) -> Option<&AgentView> {
        self.fleet.iter().find(|view| view.row.id == id)
    }

    /// The admin API's status of the rollout (history when it was read).
    pub fn status(&self, rollout: proto::RolloutInfo) -> proto::StatusResponse {
        let counts = self.counts();
        proto::StatusResponse {
            rollout: Some(rollout),
            total: counts.total,
            completed: counts.completed,
            pending: counts.pending,
            stragglers: counts.stragglers,
            soft: counts.soft,
            hard: counts.hard,
            offline: counts.offline,
            awaiting_restart: counts.awaiting_restart,
            by_cause: self.by_cause().into_iter().collect(),
            fleet_cause: self
                .fleet_cause()
                .map(|cause| cause.code().to_string())
                .unwrap_or_default(),
            history: self.history().unwrap_or_default(),
            // Filled by the caller when a roster exists (crate::roster).
            roster: None,
        }
    }
}

/// Fills a straggler's `inferred`, `evidence` and `signal` from its agent's
/// product summary and latest checks, the way the engine diagnosed it
/// ([`crate::rollouts::diagnosis::evidence_for`]); the signals are read afresh, so a
/// straggler whose signal has since gone keeps its cause (the engine's, until
/// its next tick) with the check evidence only.
pub fn explain(
    straggler: &mut proto::Straggler,
    agent: &AgentView,
    checks: &[proto::CheckResult],
    policy: &rollcall_common::policy::Policy,
    context: &SignalContext,
) {
    let Some(cause) = Cause::from_code(&straggler.cause) else {
        return;
    };
    let signals = crate::rollouts::diagnosis::signals::signals(&agent.row.product, &agent.row.labels, policy, context);
    let (inferred, evidence) = crate::rollouts::diagnosis::evidence_for(cause, &signals, checks);
    straggler.inferred = inferred;
    straggler.evidence = evidence;
    straggler.signal = signals
        .iter()
        .find(|signal| signal.kind.cause() == cause && signal.inferred == inferred)
        .map(|signal| signal.kind.code().to_string())
        .unwrap_or_default();
}

/// Completion over time: one point per moment a state changed. A
/// transition's `to_state` is a [`MemberState::word`]; one that names no
/// state (never written by the engine) is left out of the counts.
pub fn history<'a>(transitions: impl IntoIterator<Item = &'a TransitionRow>) -> Vec<proto::HistoryPoint> {
    let mut states: HashMap<&str, Option<MemberState>> = HashMap::new();
    let mut points: Vec<proto::HistoryPoint> = Vec::new();
    let mut transitions = transitions.into_iter().peekable();
    while let Some(first) = transitions.next() {
        // Every transition of one moment, then one point.
        let at = first.at_ms;
        states.insert(&first.agent_id, MemberState::from_word(&first.to_state));
        while let Some(transition) = transitions.next_if(|next| next.at_ms == at) {
            states.insert(&transition.agent_id, MemberState::from_word(&transition.to_state));
        }
        let mut point = proto::HistoryPoint {
            at: rfc3339(at),
            ..Default::default()
        };
        for state in states.values() {
            match state {
                Some(MemberState::Completed) => point.completed += 1,
                Some(MemberState::Pending) => point.pending += 1,
                Some(MemberState::Straggler { .. }) => point.stragglers += 1,
                Some(MemberState::AwaitingRestart) => point.awaiting_restart += 1,
                None => {}
            }
        }
        points.push(point);
    }
    points
}

#[cfg(test)]
mod tests;
