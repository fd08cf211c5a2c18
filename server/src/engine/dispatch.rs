//! Sending commands: every command is a row first (so it survives a
//! coordinator restart and reaches an agent whichever replica holds its
//! stream), then pushed at once to agents connected here; the rest wait for
//! their agent to reconnect, or expire.

use std::sync::Arc;

use rollcall_common::proto::{self, CoordinatorMessage, coordinator_message::Body};
use rollcall_common::timefmt::now_ms;

use crate::state::Coordinator;
use crate::store::{CommandRow, StoreResult};

pub fn to_message(row: &CommandRow) -> CoordinatorMessage {
    CoordinatorMessage {
        body: Some(Body::Command(proto::Command {
            id: row.id.clone(),
            kind: row.kind,
            splay_ms: row.splay_ms,
            expires_at_ms: row.expires_at_ms,
            rollout_id: row.rollout_id.clone(),
            target_version: row.target.clone(),
        })),
    }
}

/// Pushes commands to streams held here; returns the ids delivered.
pub fn push_local(coordinator: &Coordinator, rows: &[CommandRow]) -> Vec<String> {
    let mut delivered = Vec::new();
    for row in rows {
        if let Some(session) = coordinator.hub.get(&row.agent_id)
            && session.tx.try_send(Ok(to_message(row))).is_ok()
        {
            delivered.push(row.id.clone());
        }
    }
    delivered
}

/// Stores the commands, pushes what it can, records deliveries.
pub async fn send(coordinator: &Arc<Coordinator>, rows: Vec<CommandRow>) -> StoreResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    coordinator.store.create_commands(rows.clone()).await?;
    let delivered = push_local(coordinator, &rows);
    let count = delivered.len();
    coordinator.store.mark_delivered(delivered, now_ms()).await?;
    Ok(count)
}

/// Delivers what was queued for an agent that just connected.
pub async fn deliver_queued(coordinator: &Arc<Coordinator>, agent_id: &str) -> StoreResult<usize> {
    let queued = coordinator.store.undelivered_commands(agent_id, now_ms()).await?;
    let delivered = push_local(coordinator, &queued);
    let count = delivered.len();
    coordinator.store.mark_delivered(delivered, now_ms()).await?;
    Ok(count)
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
