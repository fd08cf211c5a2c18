//! The roster's admin calls (docs/ROSTER.md): import a console export,
//! run an Apex Central pass, its status, its entries with their probes.
//! The handlers in `admin_service.rs` authorise and audit; these do the
//! work.

use std::sync::Arc;

use rollcall_common::proto;
use tokio_stream::StreamExt as _;
use tonic::{Status, Streaming};

use crate::roster::{self, PassError, RosterView};
use crate::state::Coordinator;

/// Reads the pieces of an import, checks every entry, then replaces the
/// roster at once. A bad entry refuses the whole import (the CLI has
/// already set aside the rows it could not read).
pub async fn import(
    coordinator: &Arc<Coordinator>,
    mut pieces: Streaming<proto::ImportRosterRequest>,
) -> Result<proto::ImportRosterResponse, Status> {
    let mut source = None;
    let mut entries = Vec::new();
    while let Some(piece) = pieces.next().await {
        let piece = piece?;
        if source.is_none() {
            source = Some(piece.source.trim().to_string());
        }
        if entries.len() + piece.entries.len() > roster::MAX_IMPORT_ENTRIES {
            return Err(Status::invalid_argument(format!(
                "an import holds at most {} entries",
                roster::MAX_IMPORT_ENTRIES
            )));
        }
        for entry in piece.entries {
            entries.push(roster::entry_from_proto(entry).map_err(Status::invalid_argument)?);
        }
    }
    if entries.is_empty() {
        return Err(Status::invalid_argument(
            "the import holds no entries; the roster is kept",
        ));
    }
    let source = match source.filter(|source| !source.is_empty()) {
        Some(source) => source,
        None => "import".to_string(),
    };
    let imported = roster::import(coordinator, &source, entries)
        .await
        .map_err(Status::from)?;
    Ok(proto::ImportRosterResponse {
        imported: u32::try_from(imported).unwrap_or(u32::MAX),
    })
}

/// Runs one pass and answers with the status after it; a failed pass is
/// an error carrying its reason (the status keeps it too).
pub async fn refresh(coordinator: &Arc<Coordinator>) -> Result<proto::RosterStatus, Status> {
    match roster::refresh(coordinator).await {
        Ok(_) => status(coordinator).await,
        Err(PassError::NotConfigured) => Err(Status::failed_precondition(PassError::NotConfigured.to_string())),
        // Aborted, not unavailable: the coordinator answered, the pass failed.
        Err(error) => Err(Status::aborted(format!("roster refresh failed: {error}"))),
    }
}

pub async fn status(coordinator: &Arc<Coordinator>) -> Result<proto::RosterStatus, Status> {
    let row = coordinator.store.roster_status().await.map_err(Status::from)?;
    Ok(roster::status_proto(coordinator, &row))
}

pub async fn list(coordinator: &Arc<Coordinator>) -> Result<proto::ListRosterResponse, Status> {
    let rollouts = coordinator.store.list_rollouts().await.map_err(Status::from)?;
    let fleet = crate::rollouts::fleet::snapshot(coordinator, crate::rollouts::fleet::current_rollout(&rollouts))
        .await
        .map_err(Status::from)?;
    let status_row = coordinator.store.roster_status().await.map_err(Status::from)?;
    let entries = coordinator.store.roster_entries().await.map_err(Status::from)?;
    let status = roster::status_proto(coordinator, &status_row);
    let view = RosterView::new(status_row, entries, &fleet);
    // Entries several probes claim: each is ambiguous.
    let mut claimed = vec![false; view.entries.len()];
    for found in &view.reconciled.probes {
        if let roster::reconcile::Match::Ambiguous(candidates) = found {
            for at in candidates {
                if let Some(slot) = claimed.get_mut(*at) {
                    *slot = true;
                }
            }
        }
    }
    let entries = view
        .entries
        .iter()
        .enumerate()
        .map(|(at, entry)| {
            let agent_id = view
                .reconciled
                .probe_of
                .get(at)
                .copied()
                .flatten()
                .and_then(|probe| view.agent_ids.get(probe))
                .cloned()
                .unwrap_or_default();
            let state = if !agent_id.is_empty() {
                "matched"
            } else if claimed.get(at).copied().unwrap_or(false) {
                "ambiguous"
            } else {
                roster::NO_PROBE
            };
            proto::RosterListed {
                entry: Some(roster::entry_proto(entry)),
                agent_id,
                state: state.to_string(),
            }
        })
        .collect();
    Ok(proto::ListRosterResponse {
        status: Some(status),
        entries,
    })
}
