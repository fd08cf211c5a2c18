//! The per-agent, per-rollout state machine (pure; see ARCHITECTURE.md):
//!
//! ```text
//!   pending ──(target observed)──────────────────────────▶ completed
//!      │                                                     ▲
//!      └─(grace over, behind)─▶ straggler soft ──(attempts   │
//!                                  │  ▲          exhausted)─▶ straggler hard
//!                                  └──┴──(target observed)───┘
//! ```
//!
//! A straggler gets a recheck at once, then after `recheck_every`,
//! doubling each time with ±10% jitter, up to `max_attempts`; once they are
//! spent and the last one had its interval to answer, it turns hard (like
//! Icinga's soft/hard states: a laptop asleep overnight does not flap in and
//! out of the list). Completed is left only if a later observation shows the
//! agent behind again.

use rollcall_common::member_state::MemberState;

use crate::rollouts::diagnosis::{Cause, Diagnosis};
use crate::store::MemberRow;

/// What the coordinator observed of the agent at this tick.
#[derive(Debug, Clone)]
pub struct Observation {
    pub at_target: bool,
    /// The agent says its upgrade waits for a restart (`restart_pending`).
    pub restart_pending: bool,
    /// The diagnosis, for an agent behind the target.
    pub diagnosis: Diagnosis,
}

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub now_ms: i64,
    pub started_at_ms: i64,
    pub grace_ms: i64,
    pub recheck_every_ms: i64,
    pub max_attempts: u32,
    pub auto_update_now: bool,
    /// A factor in [0.9, 1.1] for the next recheck interval.
    pub jitter: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Recheck,
    UpdateNow,
}

/// The state name used in transitions and history.
pub fn display_state(member: &MemberRow) -> &'static str {
    member.state.word()
}

/// Causes an admin or the endpoint can clear: a failing step 1–6.
fn blocking(cause: &str) -> bool {
    Cause::from_code(cause).is_some_and(Cause::is_blocking)
}

/// The diagnosis shows the blocking cause gone: every check passes now.
/// Not `probe_error` or `no_data`: there rollcall cannot tell whether the
/// cause cleared, so it pushes nothing.
fn cleared(cause: Cause) -> bool {
    matches!(cause, Cause::Unknown | Cause::AwaitingRecheck)
}

/// One step: the member's next row and what to do. `may_recheck` is false
/// when this tick's wave is full (the recheck waits for the next tick).
pub fn step(
    member: &MemberRow,
    observation: &Observation,
    timing: Timing,
    may_recheck: bool,
) -> (MemberRow, Vec<Action>) {
    let mut next = member.clone();
    let mut actions = Vec::new();
    if observation.at_target {
        if member.state != MemberState::Completed {
            next.state = MemberState::Completed;
            next.since_ms = timing.now_ms;
        }
        next.cause.clear();
        next.failing.clear();
        // A member that falls behind again later starts a new window.
        next.auto_update_for.clear();
        next.update_agent = observation.diagnosis.update_agent.clone().unwrap_or_default();
        return (next, actions);
    }
    next.update_agent = observation.diagnosis.update_agent.clone().unwrap_or_default();
    // Installed, waiting for a restart: not a runbook cause and nothing to
    // recheck; the restart's report completes it (or shows it behind again).
    if observation.restart_pending {
        if member.state != MemberState::AwaitingRestart {
            next.state = MemberState::AwaitingRestart;
            next.since_ms = timing.now_ms;
        }
        next.cause.clear();
        next.failing.clear();
        return (next, actions);
    }
    if timing.now_ms < timing.started_at_ms + timing.grace_ms {
        if member.state != MemberState::Pending {
            next.state = MemberState::Pending;
            next.since_ms = timing.now_ms;
        }
        return (next, actions);
    }
    let new_cause = observation.diagnosis.cause.code().to_string();
    if !member.state.is_straggler() {
        next.state = MemberState::Straggler { hard: false };
        next.since_ms = timing.now_ms;
        next.attempts = 0;
        next.next_recheck_ms = timing.now_ms;
    }
    // The runbook's "fix the setting, send a manual update notification":
    // when a blocking cause has cleared, push update_now, at most once per
    // member per attempt window (from falling behind until it completes).
    // `auto_update_for` remembers the cause it was sent for and is not
    // re-armed by a new blocking cause: an agent that flips its claims
    // (update agent, then not, then again) would otherwise get update-now
    // on every flip (issue 24 point 7). A second real fix inside the same
    // window is the admin's `rollcall update-now`.
    if timing.auto_update_now
        && member.state.is_straggler()
        && blocking(&member.cause)
        && cleared(observation.diagnosis.cause)
        && next.auto_update_for.is_empty()
    {
        actions.push(Action::UpdateNow);
        next.auto_update_for = member.cause.clone();
    }
    next.cause = new_cause;
    next.failing = observation.diagnosis.failing.clone();
    if timing.now_ms >= next.next_recheck_ms && next.attempts < timing.max_attempts && may_recheck {
        actions.push(Action::Recheck);
        let backoff = timing.recheck_every_ms as f64
            * 2f64.powi(i32::try_from(next.attempts).unwrap_or(30).min(30))
            * timing.jitter;
        next.attempts += 1;
        next.rechecked_at_ms = timing.now_ms;
        next.next_recheck_ms = timing.now_ms + backoff as i64;
    } else if next.attempts >= timing.max_attempts
        && timing.now_ms >= next.next_recheck_ms
        && next.state == (MemberState::Straggler { hard: false })
    {
        next.state = MemberState::Straggler { hard: true };
        next.since_ms = timing.now_ms;
    }
    (next, actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(now_ms: i64) -> Timing {
        Timing {
            now_ms,
            started_at_ms: 0,
            grace_ms: 1000,
            recheck_every_ms: 100,
            max_attempts: 2,
            auto_update_now: true,
            jitter: 1.0,
        }
    }

    fn behind(cause: Cause) -> Observation {
        Observation {
            at_target: false,
            restart_pending: false,
            diagnosis: Diagnosis {
                cause,
                failing: vec![cause.code().to_string()],
                ..Diagnosis::none(None)
            },
        }
    }

    fn pending() -> MemberRow {
        MemberRow {
            state: MemberState::Pending,
            ..Default::default()
        }
    }

    #[test]
    fn pending_until_grace_then_soft_with_rechecks_then_hard() {
        let (member, actions) = step(&pending(), &behind(Cause::License), timing(500), true);
        assert_eq!(member.state, MemberState::Pending);
        assert!(actions.is_empty());
        let (member, actions) = step(&member, &behind(Cause::License), timing(1000), true);
        assert_eq!(display_state(&member), "straggler_soft");
        assert_eq!(actions, vec![Action::Recheck]);
        assert_eq!(member.next_recheck_ms, 1100);
        assert_eq!(member.rechecked_at_ms, 1000, "step 7 needs facts observed after this");
        let (member, actions) = step(&member, &behind(Cause::License), timing(1050), true);
        assert!(actions.is_empty(), "no recheck before its time");
        let (member, actions) = step(&member, &behind(Cause::License), timing(1100), true);
        assert_eq!(actions, vec![Action::Recheck]);
        assert_eq!(member.next_recheck_ms, 1300, "the interval doubles");
        let (member, _) = step(&member, &behind(Cause::License), timing(1200), true);
        assert!(!member.state.hard_flag(), "the last recheck still has time to answer");
        let (member, actions) = step(&member, &behind(Cause::License), timing(1300), true);
        assert!(actions.is_empty());
        assert_eq!(display_state(&member), "straggler_hard");
        assert_eq!(member.since_ms, 1300);
    }

    #[test]
    fn a_pending_restart_is_awaiting_restart_not_a_straggler_and_completes_after_it() {
        let waiting = Observation {
            restart_pending: true,
            ..behind(Cause::SystemRequirements)
        };
        let (straggler, _) = step(&pending(), &behind(Cause::License), timing(2000), true);
        assert!(straggler.state.is_straggler());
        let (member, actions) = step(&straggler, &waiting, timing(2100), true);
        assert_eq!(member.state, MemberState::AwaitingRestart);
        assert_eq!(display_state(&member), "awaiting_restart");
        assert!(actions.is_empty() && member.cause.is_empty() && member.failing.is_empty());
        assert_eq!(member.since_ms, 2100);
        let (member, _) = step(&member, &waiting, timing(2200), true);
        assert_eq!(member.since_ms, 2100, "still waiting: the same episode");
        let done = Observation {
            at_target: true,
            ..behind(Cause::Unknown)
        };
        let (member, _) = step(&member, &done, timing(2300), true);
        assert_eq!(member.state, MemberState::Completed);
    }

    #[test]
    fn target_observed_completes_from_any_state() {
        let (member, _) = step(&pending(), &behind(Cause::License), timing(2000), true);
        let done = Observation {
            at_target: true,
            ..behind(Cause::Unknown)
        };
        let (member, _) = step(&member, &done, timing(2100), true);
        assert_eq!(member.state, MemberState::Completed);
        assert!(member.cause.is_empty());
    }

    #[test]
    fn a_full_wave_postpones_the_recheck() {
        let (member, actions) = step(&pending(), &behind(Cause::License), timing(2000), false);
        assert!(actions.is_empty());
        assert_eq!(member.attempts, 0);
        let (_, actions) = step(&member, &behind(Cause::License), timing(2001), true);
        assert_eq!(actions, vec![Action::Recheck]);
    }

    #[test]
    fn update_now_once_when_a_blocking_cause_clears() {
        let (member, _) = step(&pending(), &behind(Cause::UpdatePermission), timing(2000), true);
        let cleared = Observation {
            at_target: false,
            restart_pending: false,
            diagnosis: Diagnosis::none(None),
        };
        let (member, actions) = step(&member, &cleared, timing(2010), true);
        assert!(actions.contains(&Action::UpdateNow));
        let (_, actions) = step(&member, &cleared, timing(2020), true);
        assert!(!actions.contains(&Action::UpdateNow), "only once per clearance");
    }

    #[test]
    fn flipping_claims_do_not_re_arm_update_now_within_the_window() {
        let cleared = behind(Cause::Unknown);
        let mut member = step(&pending(), &behind(Cause::UpdateAgent), timing(2000), true).0;
        let mut sent = 0;
        for flip in 0..20 {
            let blocked = if flip % 2 == 0 {
                Cause::UpdateAgent
            } else {
                Cause::UpdatePermission
            };
            let (next, actions) = step(&member, &cleared, timing(2010 + flip * 20), true);
            sent += actions.iter().filter(|action| **action == Action::UpdateNow).count();
            member = step(&next, &behind(blocked), timing(2020 + flip * 20), true).0;
        }
        assert_eq!(sent, 1, "at most once per window, whatever the agent claims");
        // Completing ends the window; falling behind again opens a new one.
        let done = Observation {
            at_target: true,
            ..behind(Cause::Unknown)
        };
        let member = step(&member, &done, timing(3000), true).0;
        let member = step(&member, &behind(Cause::UpdatePermission), timing(3010), true).0;
        let (_, actions) = step(&member, &cleared, timing(3020), true);
        assert!(actions.contains(&Action::UpdateNow));
    }

    #[test]
    fn a_probe_error_is_no_clearance() {
        let (member, _) = step(&pending(), &behind(Cause::License), timing(2000), true);
        let (member, actions) = step(&member, &behind(Cause::ProbeError), timing(2010), true);
        assert!(
            !actions.contains(&Action::UpdateNow),
            "the license may still be expired"
        );
        assert_eq!(member.cause, "probe_error");
    }
}
