//! The rows of runbook step 8's log bundles, shared by both stores.
//!
//! A bundle answers one collect command. Its chunks arrive over the agent's
//! stream in order and are appended one transaction each; each store checks,
//! inside that transaction, what an agent could get wrong or try:
//! - the command exists, is a collect, and was sent to this very agent
//!   (an agent cannot push data nobody asked for, nor into another agent's
//!   bundle);
//! - chunk `index` is the next one (no gaps, no rewrites), and the bundle is
//!   not complete yet;
//! - the bundle stays within the coordinator's byte limit.
//!
//! Only an agent's newest bundle is kept: completing one deletes the
//! agent's bundles started before it, so storage stays bounded per agent.

/// One chunk as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub agent_id: String,
    pub command_id: String,
    pub index: u32,
    pub data: Vec<u8>,
    pub last: bool,
    /// Set on the last chunk: files in the bundle and files left out.
    pub files: u32,
    pub skipped: u32,
    pub at_ms: i64,
    /// The coordinator's limit on one bundle.
    pub max_bytes: u64,
}

/// A stored bundle, without its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRow {
    pub command_id: String,
    pub agent_id: String,
    pub started_at_ms: i64,
    /// Set when the last chunk was stored.
    pub completed_at_ms: Option<i64>,
    pub chunks: u32,
    pub bytes: u64,
    pub files: u32,
    pub skipped: u32,
}

/// Why a chunk is refused, given the command it names (`kind`, `agent_id`;
/// `None` when there is none) and the bundle so far (`None` before chunk 0).
pub(crate) fn refusal(chunk: &ChunkRecord, command: Option<(i32, &str)>, so_far: Option<&BundleRow>) -> Option<String> {
    let collect = rollcall_common::proto::CommandKind::Collect as i32;
    match command {
        Some((kind, agent_id)) if kind == collect && agent_id == chunk.agent_id => {}
        _ => {
            return Some(format!(
                "no collect command {} was sent to this agent",
                chunk.command_id
            ));
        }
    }
    let (expected, bytes) = match so_far {
        Some(row) if row.completed_at_ms.is_some() => {
            return Some(format!("bundle {} is already complete", chunk.command_id));
        }
        Some(row) => (row.chunks, row.bytes),
        None => (0, 0),
    };
    if chunk.index != expected {
        return Some(format!(
            "bundle chunk {} arrived out of order (expected {expected})",
            chunk.index
        ));
    }
    let total = bytes.saturating_add(chunk.data.len() as u64);
    if total > chunk.max_bytes {
        return Some(format!(
            "bundle {} passes the coordinator's limit of {} bytes",
            chunk.command_id, chunk.max_bytes
        ));
    }
    None
}

/// The row after appending `chunk` to `so_far`.
pub(crate) fn appended(chunk: &ChunkRecord, so_far: Option<BundleRow>) -> BundleRow {
    let mut row = so_far.unwrap_or_else(|| BundleRow {
        command_id: chunk.command_id.clone(),
        agent_id: chunk.agent_id.clone(),
        started_at_ms: chunk.at_ms,
        completed_at_ms: None,
        chunks: 0,
        bytes: 0,
        files: 0,
        skipped: 0,
    });
    row.chunks += 1;
    row.bytes += chunk.data.len() as u64;
    if chunk.last {
        row.completed_at_ms = Some(chunk.at_ms);
        row.files = chunk.files;
        row.skipped = chunk.skipped;
    }
    row
}
