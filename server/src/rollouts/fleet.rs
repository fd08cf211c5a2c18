//! A snapshot of the fleet as the coordinator sees it right now: every
//! agent's row, whether it is connected and whether it counts as offline,
//! and its place in the current rollout. Admin calls, selectors and the
//! rollout engine all read the fleet through this one view.

use std::collections::HashMap;
use std::sync::Arc;

use rollcall_common::policy::Policy;
use rollcall_common::timefmt::now_ms;

use crate::state::Coordinator;
use crate::store::{AgentRow, MemberRow, RolloutRow, StoreResult};

#[derive(Debug, Clone)]
pub struct AgentView {
    pub row: AgentRow,
    /// Holds a live stream (here, or on another replica with fresh heartbeats).
    pub connected: bool,
    /// Not seen for longer than the policy's `offline_after`.
    pub offline: bool,
    /// Last seen, including heartbeats not yet flushed to the store.
    pub last_seen_ms: i64,
    /// Its place in the current rollout, if it is in one.
    pub member: Option<MemberRow>,
}

impl AgentView {
    /// The value of a selector key: a field, else a label.
    pub fn field(&self, key: &str) -> Option<String> {
        let row = &self.row;
        let value = match key {
            "id" => row.id.clone(),
            "hostname" => row.hostname.clone(),
            "version" => row.product.version.clone(),
            "role" => rollcall_common::proto::role_name(row.role).to_string(),
            "online" => self.connected.to_string(),
            "offline" => self.offline.to_string(),
            "os_id" => row.host.os_id.clone(),
            "os_version" => row.host.os_version.clone(),
            "arch" => row.host.arch.clone(),
            "update_source" => row.product.update_source.clone(),
            "source_address" => row.product.source_address.clone(),
            "update_permission" => row.product.update_permission.clone(),
            "agent_version" => row.agent_version.clone(),
            // Selectors match the storage words (`state=straggler`) and a
            // straggler's severity (`straggler=hard`).
            "state" => self.member.as_ref()?.state.storage().to_string(),
            "straggler" => self.member.as_ref()?.state.severity()?.to_string(),
            "cause" => self.member.as_ref()?.cause.clone(),
            label => return row.labels.get(label).cloned(),
        };
        Some(value)
    }
}

/// The newest active rollout, else the newest.
pub fn current_rollout(rollouts: &[RolloutRow]) -> Option<&RolloutRow> {
    rollouts
        .iter()
        .find(|rollout| rollout.cancelled_at_ms.is_none())
        .or_else(|| rollouts.first())
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Builds the view; `rollout` selects whose membership is attached.
pub async fn snapshot(coordinator: &Arc<Coordinator>, rollout: Option<&RolloutRow>) -> StoreResult<Vec<AgentView>> {
    let rows = coordinator.store.list_agents().await?;
    let members: HashMap<String, MemberRow> = match rollout {
        Some(rollout) => coordinator
            .store
            .members(&rollout.id)
            .await?
            .into_iter()
            .map(|member| (member.agent_id.clone(), member))
            .collect(),
        None => HashMap::new(),
    };
    let policy = coordinator.current_policy();
    Ok(views(coordinator, &policy, rows, members))
}

/// Joins rows with liveness and membership.
pub fn views(
    coordinator: &Coordinator,
    policy: &Policy,
    rows: Vec<AgentRow>,
    mut members: HashMap<String, MemberRow>,
) -> Vec<AgentView> {
    let now = now_ms();
    let offline_after = duration_ms(policy.offline_after());
    let fresh = duration_ms((coordinator.config.heartbeat_interval * 3).max(std::time::Duration::from_secs(10)));
    let seen = coordinator.seen.lock().map(|seen| seen.clone()).unwrap_or_default();
    rows.into_iter()
        .map(|row| {
            let last_seen_ms = seen.get(&row.id).copied().unwrap_or(0).max(row.last_seen_ms);
            let here = coordinator.hub.is_connected(&row.id);
            let connected = here || (row.connected && now - last_seen_ms < fresh);
            let offline = !here && now - last_seen_ms > offline_after;
            let member = members.remove(&row.id);
            AgentView {
                row,
                connected,
                offline,
                last_seen_ms,
                member,
            }
        })
        .collect()
}
