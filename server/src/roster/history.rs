//! A rollout's history over the whole roster (docs/ROSTER.md, "History"):
//! at each moment of the rollout's history, every listed endpoint is
//! completed, behind or no_probe, so the three add up to the roster's size
//! at every point, not only at the last one.
//!
//! The roster keeps no history of its own, so the current roster and the
//! current matching are projected over the rollout's transitions: a listed
//! endpoint whose probe is a member follows that member's state (completed
//! when it completed, behind before — pending, straggler or not yet seen);
//! any other listed endpoint stands where it stands now (by its probe's
//! version outside the rollout, or by the roster's version, or no_probe).

use std::collections::HashMap;

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;

use super::{RosterView, Standing};
use crate::rollouts::fleet::AgentView;
use crate::store::TransitionRow;

impl RosterView {
    /// Fills `points[i].roster` for the points [`crate::rollouts::rollout_view::history`]
    /// made of the same `transitions` (one point per moment, in order).
    pub fn fill_history(
        &self,
        fleet: &[AgentView],
        target: &str,
        transitions: &[TransitionRow],
        points: &mut [proto::HistoryPoint],
    ) {
        let listed = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let mut fixed = proto::RosterHistoryPoint {
            listed,
            ..Default::default()
        };
        // Members matched to an entry: followed through the transitions.
        let mut followed: HashMap<&str, bool> = HashMap::new();
        for (_, probe, standing) in self.standings(fleet, target) {
            match probe {
                Some(view) if view.member.is_some() => {
                    followed.insert(view.row.id.as_str(), false);
                }
                _ => match standing {
                    Standing::Completed => fixed.completed += 1,
                    Standing::Behind => fixed.behind += 1,
                    Standing::Unknown => fixed.no_probe += 1,
                },
            }
        }
        let members = u32::try_from(followed.len()).unwrap_or(u32::MAX);
        let mut completed: u32 = 0;
        let mut moments = transitions.iter().peekable();
        let mut slots = points.iter_mut();
        while let Some(first) = moments.next() {
            let at = first.at_ms;
            let mut step = |transition: &TransitionRow| {
                if let Some(done) = followed.get_mut(transition.agent_id.as_str()) {
                    let now = matches!(
                        MemberState::from_word(&transition.to_state),
                        Some(MemberState::Completed)
                    );
                    match (*done, now) {
                        (false, true) => completed += 1,
                        (true, false) => completed = completed.saturating_sub(1),
                        _ => {}
                    }
                    *done = now;
                }
            };
            step(first);
            while let Some(transition) = moments.next_if(|next| next.at_ms == at) {
                step(transition);
            }
            let Some(point) = slots.next() else {
                return;
            };
            point.roster = Some(proto::RosterHistoryPoint {
                listed,
                completed: fixed.completed + completed,
                behind: fixed.behind + members.saturating_sub(completed),
                no_probe: fixed.no_probe,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::roster::{RosterEntry, RosterStatusRow};

    fn member(id: &str, hostname: &str, completed: bool) -> AgentView {
        let row = crate::store::AgentRow {
            id: id.into(),
            hostname: hostname.into(),
            ..Default::default()
        };
        AgentView {
            member: Some(crate::store::MemberRow {
                agent_id: id.into(),
                state: if completed {
                    MemberState::Completed
                } else {
                    MemberState::Pending
                },
                ..Default::default()
            }),
            row,
            connected: true,
            offline: false,
            last_seen_ms: 0,
        }
    }

    fn transition(agent: &str, at_ms: i64, to: MemberState) -> TransitionRow {
        TransitionRow {
            rollout_id: "r".into(),
            agent_id: agent.into(),
            at_ms,
            from_state: String::new(),
            to_state: to.word().to_string(),
            cause: String::new(),
        }
    }

    #[test]
    fn every_point_covers_the_whole_roster() {
        let entries: Vec<RosterEntry> = [
            ("pc01", None),
            ("pc02", None),
            ("pc03", Some("14.0.2")),
            ("pc04", Some("14.0.1")),
            ("pc05", None),
        ]
        .into_iter()
        .map(|(host, version)| RosterEntry {
            host_name: host.into(),
            version: version.map(str::to_string),
            ..Default::default()
        })
        .collect();
        // pc01 completes at t=2; pc02 never does; "rogue" is not listed.
        let fleet = vec![
            member("a1", "pc01", true),
            member("a2", "pc02", false),
            member("a3", "rogue", true),
        ];
        let roster = RosterView::new(RosterStatusRow::default(), entries, &fleet);
        let transitions = vec![
            transition("a1", 1, MemberState::Pending),
            transition("a2", 1, MemberState::Pending),
            transition("a3", 1, MemberState::Pending),
            transition("a1", 2, MemberState::Completed),
            transition("a3", 3, MemberState::Completed),
        ];
        let mut points = crate::rollouts::rollout_view::history(&transitions);
        roster.fill_history(&fleet, "14.0.2", &transitions, &mut points);
        let rows: Vec<(u32, u32, u32, u32)> = points
            .iter()
            .map(|point| {
                let r = point.roster.unwrap_or_default();
                (r.listed, r.completed, r.behind, r.no_probe)
            })
            .collect();
        // pc03 completed and pc04 behind by the roster's version, pc05 no_probe.
        assert_eq!(rows, vec![(5, 1, 3, 1), (5, 2, 2, 1), (5, 2, 2, 1)]);
        for (listed, completed, behind, no_probe) in rows {
            assert_eq!(completed + behind + no_probe, listed);
        }
        // The last point agrees with the counts of now.
        let counts = roster.counts(&fleet, "14.0.2");
        assert_eq!(
            (counts.completed, counts.behind, counts.no_probe),
            (rows_last(&points).1, rows_last(&points).2, rows_last(&points).3)
        );
    }

    fn rows_last(points: &[proto::HistoryPoint]) -> (u32, u32, u32, u32) {
        let r = points.last().and_then(|point| point.roster).unwrap_or_default();
        (r.listed, r.completed, r.behind, r.no_probe)
    }
}
