//! The read model counted from rows, without a store.

use std::collections::BTreeMap;

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;

use super::*;
use crate::store::AgentRow;

fn rollout() -> RolloutRow {
    RolloutRow {
        id: "r1".into(),
        target: "14.0.2".into(),
        grace_ms: 1000,
        recheck_every_ms: 1000,
        max_attempts: 3,
        selector: "all".into(),
        auto_update_now: false,
        started_at_ms: 1,
        started_by: "alice".into(),
        cancelled_at_ms: None,
    }
}

/// An agent; `member` is its state and cause in the rollout, if a member.
fn agent(id: &str, labels: &[(&str, &str)], member: Option<(MemberState, &str)>) -> AgentView {
    AgentView {
        row: AgentRow {
            id: id.into(),
            hostname: format!("host-{id}"),
            role: proto::Role::Endpoint as i32,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        },
        connected: true,
        offline: false,
        last_seen_ms: 0,
        member: member.map(|(state, cause)| MemberRow {
            rollout_id: "r1".into(),
            agent_id: id.into(),
            state,
            cause: cause.into(),
            ..Default::default()
        }),
    }
}

const SOFT: MemberState = MemberState::Straggler { hard: false };
const HARD: MemberState = MemberState::Straggler { hard: true };

fn fleet() -> Vec<AgentView> {
    let mut offline_pending = agent("p2", &[("site", "kobe")], Some((MemberState::Pending, "")));
    offline_pending.offline = true;
    let mut offline_done = agent("c2", &[("site", "kobe")], Some((MemberState::Completed, "")));
    offline_done.offline = true;
    vec![
        agent("c1", &[("site", "osaka")], Some((MemberState::Completed, ""))),
        offline_done,
        agent("p1", &[("site", "osaka")], Some((MemberState::Pending, ""))),
        offline_pending,
        agent("s1", &[("site", "osaka")], Some((SOFT, "license"))),
        agent("s2", &[("site", "kobe")], Some((HARD, "certificates"))),
        agent("s3", &[], Some((SOFT, "license"))),
        // Not a member: counted nowhere.
        agent("x1", &[("site", "osaka")], None),
    ]
}

#[test]
fn counts_every_member_once_and_offline_only_when_not_completed() {
    let view = RolloutView::new(rollout(), fleet(), None);
    assert_eq!(
        view.counts(),
        Counts {
            total: 7,
            completed: 2,
            pending: 2,
            stragglers: 3,
            soft: 2,
            hard: 1,
            offline: 1,
            awaiting_restart: 0,
        }
    );
    let osaka = view.counts_where(|agent| agent.row.labels.get("site").map(String::as_str) == Some("osaka"));
    assert_eq!((osaka.total, osaka.completed, osaka.stragglers), (3, 1, 1));
}

#[test]
fn by_cause_counts_stragglers_only() {
    let view = RolloutView::new(rollout(), fleet(), None);
    let expected: BTreeMap<String, u32> = [("certificates".to_string(), 1), ("license".to_string(), 2)].into();
    assert_eq!(view.by_cause(), expected);
    let kobe = view.by_cause_where(|agent| agent.row.labels.get("site").map(String::as_str) == Some("kobe"));
    assert_eq!(kobe, [("certificates".to_string(), 1)].into());
    // Two of three stragglers: no fleet-wide cause.
    assert_eq!(view.fleet_cause(), None);
}

#[test]
fn the_fleet_cause_is_drawn_from_every_straggler() {
    let fleet = vec![
        agent("a", &[], Some((SOFT, "license"))),
        agent("b", &[], Some((HARD, "license"))),
        agent("c", &[], Some((MemberState::Completed, "certificates"))),
    ];
    let view = RolloutView::new(rollout(), fleet, None);
    assert_eq!(view.fleet_cause(), Some(Cause::License));
    assert_eq!(view.status(proto::RolloutInfo::default()).fleet_cause, "license");
}

#[test]
fn by_label_counts_members_per_key_and_value() {
    let view = RolloutView::new(rollout(), fleet(), None);
    let groups = view.by_label();
    assert_eq!(groups.keys().copied().collect::<Vec<_>>(), ["site"]);
    let site = &groups["site"];
    assert_eq!((site["osaka"].total, site["osaka"].completed), (3, 1));
    assert_eq!(
        (site["kobe"].total, site["kobe"].completed, site["kobe"].offline),
        (3, 1, 1)
    );
}

#[test]
fn status_carries_the_counts_and_history_only_when_read() {
    let view = RolloutView::new(rollout(), fleet(), None);
    let status = view.status(proto::RolloutInfo::default());
    assert_eq!(
        (status.total, status.completed, status.pending, status.stragglers),
        (7, 2, 2, 3)
    );
    assert_eq!((status.soft, status.hard, status.offline), (2, 1, 1));
    assert_eq!(status.by_cause.get("license"), Some(&2));
    assert!(status.history.is_empty());
    assert!(view.history().is_none());

    let transitions = vec![
        transition("c1", 1, MemberState::Pending),
        transition("c1", 2, MemberState::Completed),
    ];
    let view = RolloutView::new(rollout(), fleet(), Some(transitions));
    let status = view.status(proto::RolloutInfo::default());
    assert_eq!(status.history.len(), 2);
    assert_eq!(status.history[1].completed, 1);
}

/// Update agents first (most blocked clients first), then runbook order
/// (causes naming no step after step 7), then hostname.
#[test]
fn stragglers_list_update_agents_first_then_runbook_order() {
    let straggler = |id: &str, cause: &str, role: proto::Role, blocks: u32| {
        let mut view = agent(id, &[], Some((SOFT, cause)));
        view.row.role = role as i32;
        if let Some(member) = view.member.as_mut() {
            member.blocks = blocks;
        }
        view
    };
    let fleet = vec![
        straggler("z-client", "license", proto::Role::Endpoint, 0),
        straggler("b-client", "certificates", proto::Role::Endpoint, 0),
        straggler("a-client", "certificates", proto::Role::Endpoint, 0),
        straggler("odd", "not_a_cause", proto::Role::Endpoint, 0),
        straggler("unknown", "unknown", proto::Role::Endpoint, 0),
        straggler("ua-small", "offline", proto::Role::UpdateAgent, 2),
        straggler("ua-big", "certificates", proto::Role::UpdateAgent, 9),
        agent("done", &[], Some((MemberState::Completed, ""))),
    ];
    let view = RolloutView::new(rollout(), fleet, None);
    let order: Vec<String> = view.stragglers().into_iter().map(|s| s.id).collect();
    assert_eq!(
        order,
        [
            "ua-big", "ua-small", "z-client", "a-client", "b-client", "unknown", "odd"
        ]
    );
    let listed = view.stragglers();
    let odd = listed.iter().find(|s| s.id == "odd").expect("listed");
    assert_eq!((odd.runbook_step, odd.state.as_str()), (7, "soft"));
    let license = listed.iter().find(|s| s.id == "z-client").expect("listed");
    assert_eq!(license.runbook_step, 1);
}

fn transition(agent: &str, at_ms: i64, to: MemberState) -> TransitionRow {
    TransitionRow {
        rollout_id: "r1".into(),
        agent_id: agent.into(),
        at_ms,
        from_state: String::new(),
        to_state: to.word().into(),
        cause: String::new(),
    }
}

/// The words the engine writes are the ones history counts: soft and
/// hard stragglers both count as stragglers.
#[test]
fn history_counts_every_state_the_engine_writes() {
    let transitions = [
        transition("a", 1, MemberState::Pending),
        transition("b", 1, MemberState::Pending),
        transition("a", 2, MemberState::Straggler { hard: false }),
        transition("b", 3, MemberState::Completed),
        transition("a", 4, MemberState::Straggler { hard: true }),
    ];
    let counts: Vec<(u32, u32, u32)> = history(&transitions)
        .iter()
        .map(|point| (point.pending, point.stragglers, point.completed))
        .collect();
    assert_eq!(counts, [(2, 0, 0), (1, 1, 0), (0, 1, 1), (0, 1, 1)]);
}

#[test]
fn scoped_history_keeps_only_the_scoped_agents() {
    let transitions = vec![
        transition("a", 1, MemberState::Pending),
        transition("b", 1, MemberState::Pending),
        transition("b", 2, MemberState::Completed),
    ];
    let view = RolloutView::new(rollout(), Vec::new(), Some(transitions));
    let points = view.history_where(|id| id == "a").expect("read with history");
    let counts: Vec<(u32, u32)> = points.iter().map(|p| (p.pending, p.completed)).collect();
    assert_eq!(counts, [(1, 0)]);
}
