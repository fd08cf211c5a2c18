//! The fleet gauges `/metrics` shows, read at scrape time from the same
//! rollout view as `rollcall status` (so Grafana and the CLI never
//! disagree); `crate::metrics` holds and encodes them.

use std::sync::Arc;

use rollcall_common::member_state::MemberState;
use tonic::Code;

use crate::metrics::{FleetGauges, RolloutGauges};
use crate::rollouts::diagnosis::Cause;
use crate::rollouts::rollout_view::RolloutView;
use crate::state::Coordinator;

/// Reads every scrape-time gauge; a part that cannot be read is left out
/// (logged), the rest is still served.
pub async fn fleet(coordinator: &Arc<Coordinator>) -> FleetGauges {
    let store_bytes = match coordinator.store.store_bytes().await {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::warn!(%error, "metrics: could not read the store size");
            None
        }
    };
    FleetGauges {
        agents_connected: coordinator.hub.len(),
        connections: coordinator.connections.get(),
        store_bytes,
        rollout: rollout(coordinator).await,
    }
}

async fn rollout(coordinator: &Arc<Coordinator>) -> Option<RolloutGauges> {
    let rollout = match super::rollouts::resolve(coordinator, "").await {
        Ok(rollout) => rollout,
        // No rollout yet: the rollout gauges are simply absent.
        Err(status) if status.code() == Code::NotFound => return None,
        Err(status) => {
            // Counters are still worth serving; the gauges stay absent
            // rather than show stale numbers.
            tracing::warn!(error = status.message(), "metrics: could not read rollout status");
            return None;
        }
    };
    let view = match RolloutView::load(coordinator, rollout, false).await {
        Ok(view) => view,
        Err(error) => {
            tracing::warn!(%error, "metrics: could not read rollout status");
            return None;
        }
    };
    let info = super::rollouts::rollout_info(view.rollout());
    let counts = view.counts();
    let by_cause = view.by_cause();
    let completion_ratio = if counts.total == 0 {
        0.0
    } else {
        f64::from(counts.completed) / f64::from(counts.total)
    };
    Some(RolloutGauges {
        id: info.id,
        target: info.target,
        state: info.state,
        members: vec![
            (MemberState::Completed, counts.completed),
            (MemberState::Pending, counts.pending),
            (MemberState::Straggler { hard: false }, counts.soft),
            (MemberState::Straggler { hard: true }, counts.hard),
            (MemberState::AwaitingRestart, counts.awaiting_restart),
        ],
        offline: counts.offline,
        by_cause: Cause::ALL
            .iter()
            .map(|cause| (cause.code(), by_cause.get(cause.code()).copied().unwrap_or(0)))
            .collect(),
        completion_ratio,
    })
}
