//! Keeping replicas in step: several coordinators on one PostgreSQL
//! database each hold some agents' streams and keep a little in memory
//! (the revocation list, the policy). When one of them changes something
//! the others must act on, it stores the change, then sends a wake-up
//! ([`Notice`], LISTEN/NOTIFY through the store). A replica that wakes up
//! reads the rows and acts on what concerns it:
//!
//! - commands queued for agents it holds are delivered (bounded pages);
//! - revocations reload the list its TLS verifier consults and cut the
//!   revoked agents' streams here;
//! - a newer policy is loaded and pushed to the agents it holds.
//!
//! Wake-ups carry no data, so a lost one costs only time: after the channel
//! (re)connects a `Resync` reloads everything, and a periodic sweep
//! ([`SWEEP_INTERVAL`]) delivers commands whose wake-up was lost (a NOTIFY
//! that failed after its rows committed), reloads revocations and the
//! policy. With SQLite there is one process
//! and this task does not run.

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::policy::Policy;
use rollcall_common::proto;
use rollcall_common::timefmt::now_ms;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::rollouts::engine::dispatch;
use crate::state::Coordinator;
use crate::store::{Notice, StoreResult};

/// How often revocations, the policy and undelivered commands for agents
/// held here are reloaded without a wake-up: the bound on how long a lost
/// NOTIFY can leave this replica behind.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(15);
/// Agents per query when looking for their undelivered commands.
const AGENTS_PER_QUERY: usize = 1000;
/// Commands read per query at most.
const COMMANDS_PER_QUERY: u32 = 5000;

/// Starts listening for other replicas' wake-ups; `None` when the store has
/// a single process (SQLite).
pub async fn spawn(coordinator: Arc<Coordinator>, shutdown: CancellationToken) -> StoreResult<Option<JoinHandle<()>>> {
    let Some(notices) = coordinator.store.subscribe(shutdown.clone()).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(run(coordinator, notices, shutdown))))
}

async fn run(coordinator: Arc<Coordinator>, mut notices: mpsc::Receiver<Notice>, shutdown: CancellationToken) {
    let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_INTERVAL, SWEEP_INTERVAL);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            notice = notices.recv() => match notice {
                Some(notice) => notice,
                None => return,
            },
            // A lost wake-up must not leave a revoked admin with rights
            // here: the sweep reloads everything a wake-up would have.
            _ = sweep.tick() => Notice::Resync,
        };
        handle(&coordinator, notice).await;
    }
}

/// Acts on one wake-up.
pub async fn handle(coordinator: &Arc<Coordinator>, notice: Notice) {
    tracing::debug!(?notice, "wake-up");
    match notice {
        Notice::Commands { agent_ids } => {
            let wanted = (!agent_ids.is_empty()).then_some(agent_ids);
            deliver_held(coordinator, wanted).await;
        }
        Notice::Revoked { .. } | Notice::AdminRevoked { .. } => reload_revocations(coordinator).await,
        Notice::Policy { .. } => reload_policy(coordinator).await,
        Notice::Resync => {
            reload_revocations(coordinator).await;
            reload_policy(coordinator).await;
            deliver_held(coordinator, None).await;
        }
    }
}

/// Delivers undelivered commands to agents held here: those named, or all.
async fn deliver_held(coordinator: &Arc<Coordinator>, wanted: Option<Vec<String>>) {
    let held: Vec<String> = match wanted {
        Some(ids) => ids.into_iter().filter(|id| coordinator.hub.is_connected(id)).collect(),
        None => coordinator.hub.all().into_iter().map(|(id, _)| id).collect(),
    };
    let mut delivered = 0;
    for chunk in held.chunks(AGENTS_PER_QUERY) {
        let rows = match coordinator
            .store
            .undelivered_for_agents(Some(chunk.to_vec()), now_ms(), COMMANDS_PER_QUERY)
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "could not read queued commands; retrying on the next sweep");
                return;
            }
        };
        match dispatch::deliver(coordinator, &rows).await {
            Ok(pushed) => delivered += pushed.len(),
            Err(error) => {
                tracing::warn!(%error, "could not deliver queued commands; retrying on the next sweep");
                return;
            }
        }
    }
    if delivered > 0 {
        tracing::info!(delivered, "delivered commands queued through another replica");
    }
}

/// Reloads the revocation list and cuts revoked agents' streams held here.
async fn reload_revocations(coordinator: &Coordinator) {
    let sets = match coordinator.store.revoked().await {
        Ok(sets) => sets,
        Err(error) => {
            tracing::warn!(%error, "could not reload revocations; retrying on the next wake-up");
            return;
        }
    };
    let revoked: std::collections::HashSet<String> = sets.agent_ids.iter().cloned().collect();
    coordinator.revocation.replace(sets);
    for (agent_id, _) in coordinator.hub.all() {
        if revoked.contains(&agent_id)
            && coordinator
                .hub
                .disconnect(&agent_id, Status::permission_denied("this agent has been revoked"))
        {
            tracing::warn!(agent_id, "cut the stream of an agent revoked through another replica");
        }
    }
}

/// Loads a newer policy applied through another replica and pushes it to
/// the agents held here.
async fn reload_policy(coordinator: &Coordinator) {
    let row = match coordinator.store.current_policy().await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, "could not reload the policy; retrying on the next wake-up");
            return;
        }
    };
    let current = coordinator.policy.borrow().as_ref().map(|doc| doc.version).unwrap_or(0);
    if row.version <= current {
        return;
    }
    let parsed = match Policy::from_toml_str(&row.toml) {
        Ok(parsed) => parsed,
        Err(error) => {
            // Validated by the replica that applied it: a newer rollcall may
            // write what this one cannot read. Keep the current policy.
            tracing::error!(%error, version = row.version, "cannot read the policy applied through another replica");
            return;
        }
    };
    let version = row.version;
    let doc = proto::PolicyDoc {
        version,
        toml: row.toml,
    };
    let pushed = crate::admin::policy_apply::load_and_push(coordinator, doc, parsed);
    tracing::info!(version, pushed, "policy applied through another replica");
}
