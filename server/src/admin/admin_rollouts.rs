//! The rollout side of the admin API: start, list, cancel, status (with
//! history), stragglers, and recheck / update-now with live progress.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339_or_empty};
use tokio_stream::Stream;
use tonic::Status;

use crate::domain::selector::Selector;
use crate::edge::auth::AdminCaller;
use crate::read::rollouts::{resolve, rollout_info};
use crate::rollouts::engine::{at_target, dispatch};
use crate::rollouts::fleet::snapshot;
use crate::rollouts::rollout_view::RolloutView;
use crate::state::Coordinator;
use crate::store::{BatchTally, CommandRow, RolloutRow};

const MAX_WAIT: Duration = Duration::from_secs(3600);
/// How often progress re-reads the store when no local commit woke it
/// (answers ingested by another replica).
const PROGRESS_POLL: Duration = Duration::from_millis(250);

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub async fn start(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    request: proto::StartRolloutRequest,
) -> Result<proto::RolloutInfo, Status> {
    rollcall_common::version::validate(&request.target)
        .map_err(|error| Status::invalid_argument(format!("--target: {error}")))?;
    let max_attempts = if request.max_attempts == 0 {
        3
    } else {
        request.max_attempts
    };
    if max_attempts > 100 {
        return Err(Status::invalid_argument("--max-attempts must be at most 100"));
    }
    let selector = Selector::parse(&request.selector).map_err(|error| Status::invalid_argument(error.to_string()))?;
    let grace_ms = if request.grace_ms == 0 {
        let adapter = if request.adapter.is_empty() {
            fleet_adapter(coordinator, &selector).await?
        } else {
            Some(request.adapter.clone())
        };
        default_grace_ms(adapter.as_deref())
    } else {
        ms(request.grace_ms)
    };
    let row = RolloutRow {
        id: format!("r-{}", &uuid::Uuid::now_v7().simple().to_string()[..12]),
        target: request.target,
        grace_ms,
        recheck_every_ms: if request.recheck_every_ms == 0 {
            900_000
        } else {
            ms(request.recheck_every_ms).max(100)
        },
        max_attempts,
        selector: if request.selector.is_empty() {
            "all".into()
        } else {
            request.selector
        },
        auto_update_now: request.auto_update_now,
        started_at_ms: now_ms(),
        started_by: caller.name.clone(),
        cancelled_at_ms: None,
    };
    coordinator
        .store
        .create_rollout(row.clone())
        .await
        .map_err(Status::from)?;
    tracing::info!(
        rollout = row.id,
        target = row.target,
        by = caller.name,
        "rollout started"
    );
    Ok(rollout_info(&row))
}

/// The default grace before a first recheck.
pub const DEFAULT_GRACE_MS: i64 = 3_600_000;

/// The default grace of an Apex One rollout: the Apex One server resends an
/// update notification an agent did not answer every 15 minutes, up to five
/// times (Apex One online help, "Event-triggered Updates"), so the last
/// one goes out 75 minutes after the first; 15 more for the download and
/// install it starts. Before that, a behind agent may still be on its way.
pub const APEX_ONE_GRACE_MS: i64 = 90 * 60 * 1000;

/// The grace for a rollout of agents read through `adapter`.
pub fn default_grace_ms(adapter: Option<&str>) -> i64 {
    match adapter {
        Some("apex-one") => APEX_ONE_GRACE_MS,
        _ => DEFAULT_GRACE_MS,
    }
}

/// "apex-one" when any agent the selector takes reports that adapter (a
/// rollout of Apex One endpoints gets the product's timing), else the
/// adapter they all report, else `None`.
async fn fleet_adapter(coordinator: &Arc<Coordinator>, selector: &Selector) -> Result<Option<String>, Status> {
    let views = crate::rollouts::fleet::snapshot(coordinator, None)
        .await
        .map_err(Status::from)?;
    let adapters: std::collections::BTreeSet<&str> = views
        .iter()
        .filter(|view| !view.row.revoked && selector.matches(&view.row.id, |key| view.field(key)))
        .map(|view| view.row.product.adapter.as_str())
        .filter(|adapter| !adapter.is_empty())
        .collect();
    if adapters.contains("apex-one") {
        return Ok(Some("apex-one".to_string()));
    }
    Ok(adapters.into_iter().next().map(str::to_string))
}

/// The rollout a request names, or the current one.
pub async fn status(
    coordinator: &Arc<Coordinator>,
    request: proto::StatusRequest,
) -> Result<proto::StatusResponse, Status> {
    let rollout = resolve(coordinator, &request.rollout_id).await?;
    let view = RolloutView::load(coordinator, rollout, request.history)
        .await
        .map_err(Status::from)?;
    let mut status = view.status(rollout_info(view.rollout()));
    // N of M over the whole roster, when there is one.
    if let Some(roster) = crate::roster::RosterView::load(coordinator, view.fleet())
        .await
        .map_err(Status::from)?
    {
        status.roster = Some(roster.counts(view.fleet(), &view.rollout().target).to_proto());
        // Every point of the history over the whole roster too.
        if let Some(transitions) = view.transitions() {
            roster.fill_history(view.fleet(), &view.rollout().target, transitions, &mut status.history);
        }
    }
    Ok(status)
}

pub async fn stragglers(
    coordinator: &Arc<Coordinator>,
    request: proto::StragglersRequest,
) -> Result<proto::StragglersResponse, Status> {
    let rollout = resolve(coordinator, &request.rollout_id).await?;
    let view = RolloutView::load(coordinator, rollout, false)
        .await
        .map_err(Status::from)?;
    let policy = coordinator.current_policy();
    let context = view.signal_context(&policy, rollcall_common::timefmt::now_ms());
    let mut stragglers = view.stragglers();
    // Every straggler's latest checks in one query, not one per straggler.
    let checks = coordinator
        .store
        .latest_checks_of(stragglers.iter().map(|straggler| straggler.id.clone()).collect())
        .await
        .map_err(Status::from)?;
    let by_id: HashMap<&str, &crate::rollouts::fleet::AgentView> = view
        .fleet()
        .iter()
        .map(|agent| (agent.row.id.as_str(), agent))
        .collect();
    let none = Vec::new();
    for straggler in &mut stragglers {
        let Some(agent) = by_id.get(straggler.id.as_str()).copied() else {
            continue;
        };
        let checks = checks.get(&straggler.id).unwrap_or(&none);
        crate::rollouts::rollout_view::explain(straggler, agent, checks, &policy, &context);
    }
    // Then the listed endpoints without a probe (cause no_probe).
    if let Some(roster) = crate::roster::RosterView::load(coordinator, view.fleet())
        .await
        .map_err(Status::from)?
    {
        stragglers.extend(roster.probe_less_stragglers(view.fleet(), &view.rollout().target));
    }
    Ok(proto::StragglersResponse {
        rollout: Some(rollout_info(view.rollout())),
        stragglers,
    })
}

pub type ProgressStream = Pin<Box<dyn Stream<Item = Result<proto::CommandProgress, Status>> + Send>>;

/// Sends a command to the selected agents and streams progress until all
/// answered or the wait ran out.
pub async fn send_command(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    request: proto::SendCommandRequest,
) -> Result<ProgressStream, Status> {
    let started = tokio::time::Instant::now();
    let kind = proto::CommandKind::try_from(request.kind)
        .ok()
        // Collect has its own call (`Collect`): its answer is a bundle, not a report.
        .filter(|kind| matches!(kind, proto::CommandKind::Recheck | proto::CommandKind::UpdateNow))
        .ok_or_else(|| Status::invalid_argument("kind must be recheck or update_now"))?;
    let selector = Selector::parse(&request.selector).map_err(|error| Status::invalid_argument(error.to_string()))?;
    let wait = Duration::from_millis(request.wait_ms).clamp(Duration::from_millis(100), MAX_WAIT);
    let rollouts = coordinator.store.list_rollouts().await.map_err(Status::from)?;
    let rollout = rollouts
        .iter()
        .find(|rollout| rollout.cancelled_at_ms.is_none())
        .cloned();
    let views = snapshot(coordinator, rollout.as_ref()).await.map_err(Status::from)?;
    let snapshot_took = started.elapsed();
    let now = now_ms();
    let batch_id = dispatch::new_id();
    let target = rollout.as_ref().map(|r| r.target.clone()).unwrap_or_default();
    // A short splay takes the edge off a fleet-wide recheck without eating
    // into a one-second round trip: the ingest queues and HTTP/2 flow
    // control already hold back what the store cannot take at once.
    let splay_ms = u32::try_from((wait.as_millis() / 20).min(100)).unwrap_or(100);
    let rows: Vec<CommandRow> = views
        .iter()
        .filter(|view| !view.row.revoked && selector.matches(&view.row.id, |key| view.field(key)))
        .map(|view| CommandRow {
            id: dispatch::new_id(),
            batch_id: batch_id.clone(),
            agent_id: view.row.id.clone(),
            kind: kind as i32,
            rollout_id: rollout.as_ref().map(|r| r.id.clone()).unwrap_or_default(),
            target: target.clone(),
            origin: format!("admin:{}", caller.name),
            splay_ms,
            created_at_ms: now,
            expires_at_ms: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
            ..Default::default()
        })
        .collect();
    let targeted = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    // Counting starts before the first command goes out.
    let watched = coordinator.ingest.watch_batch(&batch_id);
    dispatch::send(coordinator, rows).await.map_err(Status::from)?;
    tracing::info!(
        batch = batch_id,
        targeted,
        kind = kind.as_str_name(),
        by = caller.name,
        snapshot = ?snapshot_took,
        took = ?started.elapsed(),
        "command sent"
    );

    let coordinator = coordinator.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let shutdown = coordinator.shutdown.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + wait;
        let mut last: Option<proto::CommandProgress> = None;
        let mut answers = coordinator.ingest.answers();
        // With one coordinator every answer goes through its own ingest, so
        // the local count is the whole truth. Replicas sharing a database
        // also store answers for agents they hold: there the store's tally
        // (each poll) is the truth, and the local count only brings it
        // forward between polls.
        let shared = coordinator.config.database_url.is_some();
        let mut stored = BatchTally::default();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            let expired = tokio::time::Instant::now() >= deadline || shutdown.is_cancelled();
            // The last word, at the deadline, is the store's.
            if shared && (expired || tokio::time::Instant::now() >= next_poll) {
                stored = match coordinator.store.batch_tally(&batch_id).await {
                    Ok(tally) => tally,
                    Err(error) => {
                        let _ = tx.send(Err(Status::from(error))).await;
                        return;
                    }
                };
                next_poll = tokio::time::Instant::now() + PROGRESS_POLL;
            }
            let local = watched.tally();
            let tally = if stored.settled() > local.settled() {
                &stored
            } else {
                &local
            };
            let mut progress = progress_of(tally, targeted, &target);
            progress.done = expired || progress.answered + progress.refused >= targeted;
            if progress.done {
                progress.unreachable = targeted
                    .saturating_sub(progress.answered)
                    .saturating_sub(progress.refused);
            }
            if last.as_ref() != Some(&progress) {
                if tx.send(Ok(progress)).await.is_err() {
                    return;
                }
                last = Some(progress);
            }
            if progress.done {
                tracing::info!(
                    batch = batch_id,
                    targeted,
                    answered = progress.answered,
                    refused = progress.refused,
                    unreachable = progress.unreachable,
                    took = ?started.elapsed(),
                    "command batch finished"
                );
                return;
            }
            // Answers stored here wake the loop at once; answers stored by
            // another replica are seen on the next poll.
            tokio::select! {
                () = shutdown.cancelled() => {}
                Ok(()) = answers.changed() => {}
                () = tokio::time::sleep(PROGRESS_POLL) => {}
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn progress_of(tally: &BatchTally, targeted: u32, target: &str) -> proto::CommandProgress {
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    let mut progress = proto::CommandProgress {
        targeted,
        refused: count(tally.refused),
        ..Default::default()
    };
    for (version, answered) in &tally.answered_by_version {
        let answered = count(*answered);
        progress.answered = progress.answered.saturating_add(answered);
        if target.is_empty() || at_target(version, target) {
            progress.completed = progress.completed.saturating_add(answered);
        } else {
            progress.behind = progress.behind.saturating_add(answered);
        }
    }
    progress
}

pub async fn cancel(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    id: &str,
) -> Result<proto::RolloutInfo, Status> {
    let rollout = resolve(coordinator, id).await?;
    if !coordinator
        .store
        .cancel_rollout(&rollout.id, now_ms())
        .await
        .map_err(Status::from)?
    {
        return Err(Status::failed_precondition(format!(
            "rollout {} is not active",
            rollout.id
        )));
    }
    tracing::info!(rollout = rollout.id, by = caller.name, "rollout cancelled");
    let rollout = resolve(coordinator, &rollout.id).await?;
    Ok(rollout_info(&rollout))
}

pub fn since(ms: i64) -> String {
    rfc3339_or_empty(ms)
}

#[cfg(test)]
mod grace_tests {
    use super::*;

    #[test]
    fn apex_one_rollouts_wait_out_the_servers_five_notifications() {
        // Five notifications 15 minutes apart: the last at 75 minutes.
        assert!(default_grace_ms(Some("apex-one")) >= 75 * 60 * 1000);
        assert_eq!(default_grace_ms(Some("file")), DEFAULT_GRACE_MS);
        assert_eq!(default_grace_ms(None), DEFAULT_GRACE_MS);
    }
}
