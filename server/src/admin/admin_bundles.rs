//! The admin side of runbook step 8's log bundles: `Collect` queues a
//! collect command per selected agent (rows first, like every command),
//! `ListBundles` says where each stands, `GetBundle` hands one out.
//!
//! The request names agents, never files: what a bundle holds is decided by
//! each agent's own `[collect]` config (ARCHITECTURE.md, "the agent runs
//! only what its own config allows").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::proto;
use rollcall_common::timefmt::{now_ms, rfc3339_or_empty};
use tonic::Status;

use crate::domain::selector::Selector;
use crate::edge::auth::AdminCaller;
use crate::rollouts::engine::dispatch;
use crate::rollouts::fleet::{current_rollout, snapshot};
use crate::state::Coordinator;
use crate::store::CommandRow;
use crate::store::bundles::BundleRow;

/// How long agents have to answer when the request does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

pub async fn collect(
    coordinator: &Arc<Coordinator>,
    caller: &AdminCaller,
    request: proto::CollectRequest,
) -> Result<proto::CollectResponse, Status> {
    let selector = Selector::parse(&request.selector).map_err(|error| Status::invalid_argument(error.to_string()))?;
    let wait = match request.wait_ms {
        0 => DEFAULT_WAIT,
        ms => Duration::from_millis(ms).clamp(Duration::from_secs(1), MAX_WAIT),
    };
    // Selectors may name rollout fields (cause=…, state=…): resolve them
    // against the current rollout, as recheck does.
    let rollouts = coordinator.store.list_rollouts().await.map_err(Status::from)?;
    let views = snapshot(coordinator, current_rollout(&rollouts))
        .await
        .map_err(Status::from)?;
    let now = now_ms();
    let batch_id = dispatch::new_id();
    let mut targets = Vec::new();
    let mut rows = Vec::new();
    for view in views
        .iter()
        .filter(|view| !view.row.revoked && selector.matches(&view.row.id, |key| view.field(key)))
    {
        let id = dispatch::new_id();
        targets.push(proto::CollectTarget {
            agent_id: view.row.id.clone(),
            hostname: view.row.hostname.clone(),
            command_id: id.clone(),
        });
        rows.push(CommandRow {
            id,
            batch_id: batch_id.clone(),
            agent_id: view.row.id.clone(),
            kind: proto::CommandKind::Collect as i32,
            origin: format!("admin:{}", caller.name),
            created_at_ms: now,
            expires_at_ms: now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
            ..Default::default()
        });
    }
    dispatch::send(coordinator, rows).await.map_err(Status::from)?;
    tracing::info!(
        batch = batch_id,
        targeted = targets.len(),
        by = caller.name,
        "collect sent"
    );
    Ok(proto::CollectResponse { batch_id, targets })
}

fn info(row: &BundleRow, hostname: &str) -> proto::BundleInfo {
    proto::BundleInfo {
        command_id: row.command_id.clone(),
        agent_id: row.agent_id.clone(),
        hostname: hostname.to_string(),
        state: if row.completed_at_ms.is_some() {
            "complete"
        } else {
            "receiving"
        }
        .into(),
        reason: String::new(),
        bytes: row.bytes,
        files: row.files,
        skipped: row.skipped,
        collected_at: rfc3339_or_empty(row.completed_at_ms.unwrap_or(0)),
    }
}

/// Where a collect command stands that has no bundle row yet.
fn without_bundle(command: &CommandRow, hostname: &str, now: i64) -> proto::BundleInfo {
    let (state, reason) = if let Some(reason) = command.receipt.refusal_reason() {
        ("refused", reason.to_string())
    } else if command.expired || command.expires_at_ms < now {
        ("expired", String::new())
    } else {
        ("waiting", String::new())
    };
    proto::BundleInfo {
        command_id: command.id.clone(),
        agent_id: command.agent_id.clone(),
        hostname: hostname.to_string(),
        state: state.into(),
        reason,
        ..Default::default()
    }
}

async fn hostnames(coordinator: &Coordinator) -> Result<HashMap<String, String>, Status> {
    Ok(coordinator
        .store
        .list_agents()
        .await
        .map_err(Status::from)?
        .into_iter()
        .map(|agent| (agent.id, agent.hostname))
        .collect())
}

pub async fn list(
    coordinator: &Coordinator,
    request: proto::ListBundlesRequest,
) -> Result<proto::ListBundlesResponse, Status> {
    let names = hostnames(coordinator).await?;
    let hostname = |id: &str| names.get(id).cloned().unwrap_or_default();
    let stored = coordinator.store.list_bundles().await.map_err(Status::from)?;
    if request.batch_id.is_empty() {
        return Ok(proto::ListBundlesResponse {
            bundles: stored.iter().map(|row| info(row, &hostname(&row.agent_id))).collect(),
        });
    }
    let by_command: HashMap<&str, &BundleRow> = stored.iter().map(|row| (row.command_id.as_str(), row)).collect();
    let commands = coordinator
        .store
        .batch_commands(&request.batch_id)
        .await
        .map_err(Status::from)?;
    let now = now_ms();
    let mut bundles: Vec<proto::BundleInfo> = commands
        .iter()
        .filter(|command| command.kind == proto::CommandKind::Collect as i32)
        .map(|command| match by_command.get(command.id.as_str()) {
            Some(row) => info(row, &hostname(&command.agent_id)),
            None => without_bundle(command, &hostname(&command.agent_id), now),
        })
        .collect();
    bundles.sort_by(|left, right| (&left.hostname, &left.agent_id).cmp(&(&right.hostname, &right.agent_id)));
    Ok(proto::ListBundlesResponse { bundles })
}

pub async fn get(coordinator: &Coordinator, request: proto::GetBundleRequest) -> Result<proto::Bundle, Status> {
    if request.agent_id.is_empty() && request.command_id.is_empty() {
        return Err(Status::invalid_argument("name an agent id or a command id"));
    }
    let stored = coordinator.store.list_bundles().await.map_err(Status::from)?;
    let found = stored
        .iter()
        .filter(|row| row.completed_at_ms.is_some())
        .filter(|row| request.agent_id.is_empty() || row.agent_id == request.agent_id)
        .filter(|row| request.command_id.is_empty() || row.command_id == request.command_id)
        .max_by_key(|row| (row.completed_at_ms, row.command_id.clone()))
        .ok_or_else(|| Status::not_found("no complete log bundle for that agent; run `rollcall collect` first"))?;
    let tar = coordinator
        .store
        .bundle_data(&found.command_id)
        .await
        .map_err(Status::from)?
        .ok_or_else(|| Status::not_found("the bundle was replaced by a newer one; ask again"))?;
    let names = hostnames(coordinator).await?;
    let hostname = names.get(&found.agent_id).cloned().unwrap_or_default();
    Ok(proto::Bundle {
        info: Some(info(found, &hostname)),
        tar,
    })
}
