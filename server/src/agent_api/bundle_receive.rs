//! Log-bundle chunks arriving on an agent's stream (runbook step 8).
//!
//! Each chunk is stored before the next message of that stream is read, so
//! a bundle costs no memory here beyond one chunk and the agent's stream is
//! held back while the store writes (its own backpressure, no extra queue).
//! A chunk the store refuses (no collect command for this agent, out of
//! order, over [`inbound::MAX_BUNDLE_BYTES`]) ends the stream like a
//! malformed report: the agent is misbehaving or confused, and says so in
//! its log when it reconnects.

use rollcall_common::proto;
use rollcall_common::timefmt::now_ms;
use tonic::Status;

use crate::agents::inbound::{self, ValidChunk};
use crate::state::Coordinator;
use crate::store::StoreError;
use crate::store::bundles::ChunkRecord;

/// Stores one chunk; an error ends the stream with that status.
pub async fn receive(coordinator: &Coordinator, agent_id: &str, chunk: proto::BundleChunk) -> Result<(), Status> {
    let chunk = ValidChunk::try_from(chunk)?.into_inner();
    let record = ChunkRecord {
        agent_id: agent_id.to_string(),
        command_id: chunk.command_id,
        index: chunk.index,
        data: chunk.data,
        last: chunk.last,
        files: chunk.files,
        skipped: chunk.skipped,
        at_ms: now_ms(),
        max_bytes: inbound::MAX_BUNDLE_BYTES,
    };
    match coordinator.store.put_bundle_chunk(record).await {
        Ok(Ok(row)) => {
            if row.completed_at_ms.is_some() {
                tracing::info!(
                    agent_id,
                    command = row.command_id,
                    bytes = row.bytes,
                    files = row.files,
                    skipped = row.skipped,
                    "log bundle received"
                );
            }
            Ok(())
        }
        Ok(Err(reason)) => {
            tracing::warn!(agent_id, reason, "refused a log bundle chunk");
            Err(Status::invalid_argument(reason))
        }
        Err(error) => {
            if let StoreError::Unavailable(reason) = &error {
                coordinator.health.store_failed(reason);
            }
            tracing::error!(%error, agent_id, "could not store a log bundle chunk");
            Err(crate::status::for_agent(&error, "store log bundles"))
        }
    }
}
