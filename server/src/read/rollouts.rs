//! The rollout a request names (or the current one) and its wire summary:
//! the admin API, the report, `/metrics` and the dashboard all resolve a
//! rollout here.

use rollcall_common::proto;
use rollcall_common::timefmt::rfc3339;
use tonic::Status;

use crate::rollouts::fleet::current_rollout;
use crate::state::Coordinator;
use crate::store::RolloutRow;

/// The rollout `id` names; empty: the current one.
pub async fn resolve(coordinator: &Coordinator, id: &str) -> Result<RolloutRow, Status> {
    let rollouts = coordinator.store.list_rollouts().await.map_err(Status::from)?;
    let found = if id.is_empty() {
        current_rollout(&rollouts).cloned()
    } else {
        rollouts.into_iter().find(|rollout| rollout.id == id)
    };
    found.ok_or_else(|| {
        if id.is_empty() {
            Status::not_found("no rollout yet; start one with `rollcall rollout start --target VERSION`")
        } else {
            Status::not_found(format!("no rollout {id}"))
        }
    })
}

/// A rollout's row as the wire's `RolloutInfo`.
pub fn rollout_info(row: &RolloutRow) -> proto::RolloutInfo {
    proto::RolloutInfo {
        id: row.id.clone(),
        target: row.target.clone(),
        grace_ms: u64::try_from(row.grace_ms).unwrap_or(0),
        recheck_every_ms: u64::try_from(row.recheck_every_ms).unwrap_or(0),
        max_attempts: row.max_attempts,
        selector: row.selector.clone(),
        auto_update_now: row.auto_update_now,
        started_at: rfc3339(row.started_at_ms),
        started_by: row.started_by.clone(),
        state: if row.cancelled_at_ms.is_some() {
            "cancelled"
        } else {
            "active"
        }
        .into(),
        cancelled_at: row.cancelled_at_ms.map(rfc3339).unwrap_or_default(),
    }
}
