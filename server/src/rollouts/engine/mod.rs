//! The rollout engine: the coordinator's own wait-then-recheck cycles.
//!
//! Every `engine_interval` it evaluates each active rollout: adds agents
//! that match its selector, observes who reached the target, diagnoses the
//! rest (runbook steps 1–7), steps each member's state machine
//! ([`machine`]), counts how many clients each straggling update agent
//! blocks, records every state change with its time, and sends the
//! rechecks and update-nows the machine asks for — at most
//! `max_commands_per_tick` per tick (waves), each with a splay the agent
//! waits out, so a fleet-wide recheck is no thundering herd.

pub mod dispatch;
pub mod machine;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::Rng;
use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339};
use rollcall_common::version::is_at_least;
use tokio_util::sync::CancellationToken;

use crate::domain::selector::Selector;
use crate::events::{Event, EventKind};
use crate::rollouts::diagnosis::{Diagnosis, Facts, UpdateAgentIndex, UpdateAgentView, diagnose};
use crate::rollouts::fleet::{AgentView, views};
use crate::state::Coordinator;
use crate::store::{CommandRow, MemberRow, RolloutRow, StoreResult, TransitionRow};
use machine::{Action, Observation, Timing, display_state, step};

/// The latest check run of every agent, kept between ticks so only
/// new results are read from the store.
#[derive(Default)]
pub struct CheckCache {
    /// The newest receive time read so far (the coordinators' clocks, never
    /// an agent's: one endpoint whose clock runs ahead must not hide the
    /// others' new runs).
    watermark_ms: i64,
    by_agent: HashMap<String, CheckRun>,
}

/// Runs received up to this long before the newest one read are read again:
/// an ingest transaction stamps its receive times before it commits (about
/// 100 ms of batching), and replicas' clocks differ a little, so a run can
/// become visible after a later-stamped one. Re-reading is harmless (each
/// read is the agent's latest run as a whole) but costs a body decode per
/// agent that reported within the overlap, every tick; a run missed by a
/// commit stalled longer than this is taken in with the agent's next one.
const WATERMARK_OVERLAP_MS: i64 = 10_000;

/// One agent's latest check run and when its probe observed it.
struct CheckRun {
    /// On the coordinator's clock ([`crate::domain::clock_skew`]).
    observed_at_ms: i64,
    checks: BTreeMap<String, proto::CheckResult>,
}

impl CheckCache {
    async fn refresh(&mut self, coordinator: &Coordinator) -> StoreResult<()> {
        let since = self.watermark_ms.saturating_sub(WATERMARK_OVERLAP_MS);
        let fresh = coordinator.store.latest_checks_since(since).await?;
        for run in fresh {
            self.watermark_ms = self.watermark_ms.max(run.received_at_ms);
            // A newer run replaces the agent's previous one as a whole.
            let cached = CheckRun {
                observed_at_ms: run.observed_at_ms,
                checks: run
                    .checks
                    .into_iter()
                    .map(|check| (check.name.clone(), check))
                    .collect(),
            };
            self.by_agent.insert(run.agent_id, cached);
        }
        Ok(())
    }

    fn checks(&self, agent_id: &str) -> Vec<proto::CheckResult> {
        self.by_agent
            .get(agent_id)
            .map(|run| run.checks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// When the probe observed the agent's latest check run, on the
    /// coordinator's clock (0 = none).
    fn observed_at(&self, agent_id: &str) -> i64 {
        self.by_agent.get(agent_id).map_or(0, |run| run.observed_at_ms)
    }
}

/// True when the agent's installed version is at or above `target`.
pub fn at_target(version: &str, target: &str) -> bool {
    !version.is_empty() && is_at_least(version, target).unwrap_or(false)
}

/// The lease the engine runs under: with several replicas on one
/// PostgreSQL database, one of them runs it at a time (SQLite: always held).
pub const LEASE: &str = "engine";

/// Runs the engine until `shutdown`, on the ticks this replica holds
/// [`LEASE`]; renews it every tick and gives it up at shutdown.
pub async fn run(coordinator: Arc<Coordinator>, shutdown: CancellationToken) {
    let mut cache = CheckCache::default();
    let mut tick = tokio::time::interval(coordinator.config.engine_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let replica = coordinator.config.replica_id.clone();
    let ttl = coordinator.config.engine_lease_ttl;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let shared = coordinator.config.database_url.is_some();
    let mut holding = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let asked = tokio::time::Instant::now();
        let granted = match coordinator.store.try_lease(LEASE, &replica, ttl_ms).await {
            Ok(granted) => granted,
            Err(error) => {
                tracing::warn!(%error, "could not renew the engine lease; the engine pauses");
                false
            }
        };
        if granted != holding && shared {
            if granted {
                tracing::info!(replica, "took the engine lease: this replica runs the rollout engine");
            } else {
                tracing::info!(replica, "another replica runs the rollout engine");
            }
        }
        holding = granted;
        // A renewal that took half the lease may have let it lapse meanwhile:
        // skip the tick rather than risk two replicas running it.
        if !granted || asked.elapsed() > ttl / 2 {
            continue;
        }
        if let Err(error) = tick_once(&coordinator, &mut cache).await {
            tracing::warn!(%error, "rollout engine tick failed; retrying next tick");
        }
    }
    if holding && let Err(error) = coordinator.store.release_lease(LEASE, &replica).await {
        tracing::warn!(%error, "could not release the engine lease; another replica takes it when it expires");
    }
}

/// One evaluation of every active rollout.
pub async fn tick_once(coordinator: &Arc<Coordinator>, cache: &mut CheckCache) -> StoreResult<()> {
    let now = now_ms();
    coordinator.store.expire_commands(now).await?;
    let rollouts = coordinator.store.list_rollouts().await?;
    let active: Vec<&RolloutRow> = rollouts
        .iter()
        .filter(|rollout| rollout.cancelled_at_ms.is_none())
        .collect();
    if active.is_empty() {
        return Ok(());
    }
    cache.refresh(coordinator).await?;
    let rows = coordinator.store.list_agents().await?;
    let policy = coordinator.current_policy();
    let fleet = views(coordinator, &policy, rows, HashMap::new());
    let mut budget = coordinator.config.max_commands_per_tick;
    for rollout in active {
        evaluate(coordinator, cache, rollout, &fleet, &mut budget).await?;
    }
    Ok(())
}

/// Every update agent of the fleet by the address it claims; two agents
/// claiming one address are kept as a conflict, never overwritten.
pub fn index_update_agents(fleet: &[AgentView], target: &str) -> UpdateAgentIndex {
    let mut index = UpdateAgentIndex::new();
    for agent in fleet {
        let product = &agent.row.product;
        if agent.row.role == proto::Role::UpdateAgent as i32
            && !product.update_agent_address.is_empty()
            && !agent.row.revoked
        {
            index.insert(
                &product.update_agent_address,
                UpdateAgentView {
                    id: agent.row.id.clone(),
                    at_target: at_target(&product.version, target),
                    program_and_hotfix: product.program_and_hotfix,
                    online: !agent.offline,
                },
            );
        }
    }
    index
}

async fn evaluate(
    coordinator: &Arc<Coordinator>,
    cache: &CheckCache,
    rollout: &RolloutRow,
    fleet: &[AgentView],
    budget: &mut usize,
) -> StoreResult<()> {
    let now = now_ms();
    let selector = Selector::parse(&rollout.selector).unwrap_or(Selector::All);
    let existing: HashMap<String, MemberRow> = coordinator
        .store
        .members(&rollout.id)
        .await?
        .into_iter()
        .map(|member| (member.agent_id.clone(), member))
        .collect();
    let index = index_update_agents(fleet, &rollout.target);
    let policy = coordinator.current_policy();
    let signal_context = crate::rollouts::diagnosis::SignalContext::new(
        &policy,
        &rollout.target,
        now,
        fleet.iter().map(|agent| &agent.row.product),
    );
    for (address, claimants) in index.conflicts() {
        tracing::debug!(
            rollout = rollout.id,
            address,
            claimants = claimants.join(","),
            "several agents claim one update agent address; their clients are diagnosed update_agent_conflict"
        );
    }
    let mut changed = Vec::new();
    let mut transitions = Vec::new();
    let mut commands = Vec::new();
    let mut next_members: HashMap<String, MemberRow> = HashMap::new();
    let splay_ms = u32::try_from((rollout.recheck_every_ms / 4).clamp(0, 10_000)).unwrap_or(10_000);

    for agent in fleet {
        let row = &agent.row;
        // A new member starts pending; `joined` keeps its first transition
        // (from no state) in the history.
        let (current, joined) = match existing.get(&row.id) {
            Some(member) => (member.clone(), false),
            None if !row.revoked && selector.matches(&row.id, |key| agent.field(key)) => (
                MemberRow {
                    rollout_id: rollout.id.clone(),
                    agent_id: row.id.clone(),
                    state: MemberState::Pending,
                    since_ms: now,
                    ..Default::default()
                },
                true,
            ),
            None => continue,
        };
        let observation = Observation {
            at_target: at_target(&row.product.version, &rollout.target),
            restart_pending: !row.product.restart_pending.is_empty(),
            diagnosis: if at_target(&row.product.version, &rollout.target) {
                Diagnosis::none(
                    crate::rollouts::diagnosis::update_agent_of(&row.product, &index).map(|ua| ua.id.clone()),
                )
            } else {
                let checks = cache.checks(&row.id);
                let signals =
                    crate::rollouts::diagnosis::signals::signals(&row.product, &row.labels, &policy, &signal_context);
                let facts = Facts {
                    product: &row.product,
                    checks: &checks,
                    checks_observed_at_ms: cache.observed_at(&row.id),
                    online: !agent.offline,
                    // Rechecks of an earlier straggler episode do not count.
                    rechecks_sent: if current.state.is_straggler() {
                        current.attempts
                    } else {
                        0
                    },
                    last_recheck_at_ms: current.rechecked_at_ms,
                    signals: &signals,
                };
                diagnose(&facts, &index)
            },
        };
        let timing = Timing {
            now_ms: now,
            started_at_ms: rollout.started_at_ms,
            grace_ms: rollout.grace_ms,
            recheck_every_ms: rollout.recheck_every_ms,
            max_attempts: rollout.max_attempts,
            auto_update_now: rollout.auto_update_now,
            jitter: rand::rng().random_range(0.9..=1.1),
        };
        let (next, actions) = step(&current, &observation, timing, *budget > 0);
        for action in actions {
            let kind = match action {
                Action::Recheck => proto::CommandKind::Recheck,
                Action::UpdateNow => proto::CommandKind::UpdateNow,
            };
            *budget = budget.saturating_sub(1);
            commands.push(CommandRow {
                id: dispatch::new_id(),
                batch_id: format!("engine-{}-{now}", rollout.id),
                agent_id: row.id.clone(),
                kind: kind as i32,
                rollout_id: rollout.id.clone(),
                target: rollout.target.clone(),
                origin: if action == Action::Recheck { "schedule" } else { "auto" }.into(),
                splay_ms,
                created_at_ms: now,
                // Stale once the next attempt is due.
                expires_at_ms: now + rollout.recheck_every_ms.max(1000),
                ..Default::default()
            });
        }
        let from = if joined { "" } else { display_state(&current) };
        let to = display_state(&next);
        if from != to {
            transitions.push(TransitionRow {
                rollout_id: rollout.id.clone(),
                agent_id: row.id.clone(),
                at_ms: now,
                from_state: from.to_string(),
                to_state: to.to_string(),
                cause: next.cause.clone(),
            });
            coordinator.publish(Event {
                at: rfc3339(now),
                kind: if next.state == (MemberState::Straggler { hard: false })
                    && from != (MemberState::Straggler { hard: false }).word()
                {
                    EventKind::Straggler
                } else {
                    EventKind::StateChange
                },
                agent_id: row.id.clone(),
                hostname: row.hostname.clone(),
                rollout_id: rollout.id.clone(),
                from: from.to_string(),
                to: to.to_string(),
                cause: next.cause.clone(),
                detail: observation.diagnosis.detail.clone(),
            });
        }
        next_members.insert(row.id.clone(), next);
    }

    // Blocks: clients of each update agent that are not completed.
    let mut blocks: HashMap<String, u32> = HashMap::new();
    for member in next_members.values() {
        if !member.update_agent.is_empty() && !member.state.is_completed() {
            *blocks.entry(member.update_agent.clone()).or_default() += 1;
        }
    }
    for (agent_id, mut member) in next_members {
        member.blocks = blocks.get(&agent_id).copied().unwrap_or(0);
        if existing.get(&agent_id) != Some(&member) {
            changed.push(member);
        }
    }
    coordinator.store.save_members(changed, transitions).await?;
    if !commands.is_empty() {
        let sent = dispatch::send(coordinator, commands.clone()).await?;
        tracing::info!(
            rollout = rollout.id,
            commands = commands.len(),
            delivered_now = sent,
            "rollout engine sent commands"
        );
    }
    Ok(())
}
