//! Report retention (`--retain-reports`, 30 days by default): a periodic
//! task deletes reports received longer ago, in batches of [`BATCH`] rows,
//! one short transaction each with a pause between them, so ingest (which
//! shares SQLite's single writer) is never held up for more than one batch.
//!
//! Never deleted, whatever their age, because diagnosis and the support
//! report read them: each agent's latest report (`agents.last_seq`), the
//! report holding its latest check run (`checks_report` / `checks_seq`),
//! and `update_now_agent` reports observed since the start of any rollout
//! that is not cancelled (the report counts them). The same task then prunes
//! audit entries, commands, transitions and expired certificates
//! ([`crate::retention_prune`]).
//!
//! With several replicas (PostgreSQL) a pass runs under the `retention`
//! lease, so one replica does it; two deleting at once would only repeat
//! work, not lose any.

use std::sync::Arc;
use std::time::Duration;

use rollcall_common::timefmt::now_ms;
use tokio_util::sync::CancellationToken;

use crate::state::Coordinator;
use crate::store::{RetentionKeep, StoreResult};

/// Reports deleted per transaction at most.
pub const BATCH: u32 = 1000;
/// Pause between batches: ingest gets the writer in between.
const PAUSE: Duration = Duration::from_millis(20);
pub use crate::retention_lease::LEASE;
use crate::retention_lease::take_lease;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassSummary {
    pub deleted: u64,
    pub batches: u64,
}

/// Runs retention passes every `retention_interval` until `shutdown`;
/// returns at once when every retention is off.
pub async fn run(coordinator: Arc<Coordinator>, shutdown: CancellationToken) {
    let retain_reports = coordinator.config.retain_reports;
    if retain_reports.is_none() && !coordinator.config.retain.any() {
        tracing::info!("retention is off: reports, audit, commands, transitions and certificates are kept forever");
        return;
    }
    if retain_reports.is_none() {
        tracing::info!("report retention is off: reports are kept forever");
    }
    let mut tick = tokio::time::interval(coordinator.config.retention_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let replica = coordinator.config.replica_id.clone();
    let mut holding = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        holding = take_lease(&coordinator, &replica).await;
        if !holding {
            continue;
        }
        if let Some(retain) = retain_reports {
            match pass(&coordinator, retain, &shutdown).await {
                Ok(summary) if summary.deleted > 0 => tracing::info!(
                    deleted = summary.deleted,
                    batches = summary.batches,
                    retain = %humantime::format_duration(retain),
                    "retention deleted old reports"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "retention pass failed; trying again next interval"),
            }
        }
        match crate::retention_prune::pass(&coordinator, now_ms(), &shutdown).await {
            Ok(pruned) if pruned.values().any(|count| *count > 0) => {
                tracing::info!(?pruned, "retention deleted old rows")
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "retention of audit, commands, transitions or certificates failed; trying again next interval")
            }
        }
    }
    if holding && let Err(error) = coordinator.store.release_lease(LEASE, &replica).await {
        tracing::debug!(%error, "could not release the retention lease");
    }
}

/// One pass over the reports older than `retain`, batch by batch.
pub async fn pass(
    coordinator: &Coordinator,
    retain: Duration,
    shutdown: &CancellationToken,
) -> StoreResult<PassSummary> {
    let before_ms = now_ms().saturating_sub(i64::try_from(retain.as_millis()).unwrap_or(i64::MAX));
    let keep = keep_for_running_rollouts(coordinator).await?;
    let replica = &coordinator.config.replica_id;
    let mut summary = PassSummary::default();
    let mut cursor = 0;
    loop {
        let batch = coordinator
            .store
            .delete_old_reports(before_ms, keep, cursor, BATCH)
            .await?;
        summary.batches += 1;
        summary.deleted += batch.deleted;
        coordinator.metrics.reports_deleted(batch.deleted);
        let Some(next) = batch.next else {
            return Ok(summary);
        };
        cursor = next;
        tokio::select! {
            () = shutdown.cancelled() => return Ok(summary),
            () = tokio::time::sleep(PAUSE) => {}
        }
        // A long pass keeps its lease; if it lapsed, another replica goes on.
        if !take_lease(coordinator, replica).await {
            return Ok(summary);
        }
    }
}

/// Update-now reports since the earliest start of a rollout not cancelled.
async fn keep_for_running_rollouts(coordinator: &Coordinator) -> StoreResult<RetentionKeep> {
    let rollouts = coordinator.store.list_rollouts().await?;
    let update_now_since_ms = rollouts
        .iter()
        .filter(|rollout| rollout.cancelled_at_ms.is_none())
        .map(|rollout| rollout.started_at_ms)
        .min();
    Ok(RetentionKeep { update_now_since_ms })
}
