//! Runbook step 8 on the endpoint: answer a coordinator `collect` command
//! with a bundle of the log files this agent's own `[collect]` config names
//! (the command names no file; see [`config`]). The bundle is built off the
//! async workers and sent over the agent's stream in [`CHUNK_BYTES`]
//! pieces through the stream's bounded outbound queue, so a large bundle
//! waits for room instead of piling up. One collect runs at a time.

pub mod config;
mod gather;
mod tar;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rollcall_common::proto::{self, AgentMessage, agent_message};
use rollcall_common::timefmt::now_ms;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::CollectConfig;
pub use gather::{Bundle, gather};

/// One chunk's data at most (the coordinator accepts up to 256 KiB).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Answers collect commands for one agent.
#[derive(Debug, Clone)]
pub struct Collector {
    config: Arc<CollectConfig>,
    hostname: String,
    busy: Arc<AtomicBool>,
}

/// Clears the busy flag when the collect task ends, however it ends.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn refused(command: &proto::Command, reason: &str) -> Option<proto::CommandReceipt> {
    Some(proto::CommandReceipt {
        command_id: command.id.clone(),
        accepted: false,
        reason: reason.to_string(),
    })
}

impl Collector {
    pub fn new(config: CollectConfig, hostname: String) -> Self {
        Collector {
            config: Arc::new(config),
            hostname,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts answering `command` in a task (ended by `shutdown` or when the
    /// stream's queue closes); returns a refusal to send, or none: the
    /// bundle itself is the answer.
    /// `clock`: the coordinator's, which judges the command's expiry (this
    /// endpoint's own may be off by hours).
    pub fn start(
        &self,
        command: &proto::Command,
        clock: &crate::coordinator_clock::CoordinatorClock,
        out: mpsc::Sender<AgentMessage>,
        shutdown: CancellationToken,
    ) -> Option<proto::CommandReceipt> {
        if clock.expired_at(command.expires_at_ms, now_ms()) {
            return refused(command, "expired");
        }
        if !self.config.enabled() {
            return refused(command, "no [collect] paths are configured in agent.toml");
        }
        if self.busy.swap(true, Ordering::SeqCst) {
            return refused(command, "a collect is already running");
        }
        let guard = BusyGuard(self.busy.clone());
        let (config, hostname, command_id) = (self.config.clone(), self.hostname.clone(), command.id.clone());
        tokio::spawn(async move {
            let _guard = guard;
            let id = command_id.clone();
            let building = tokio::task::spawn_blocking(move || gather(&config, &id, &hostname));
            let bundle = tokio::select! {
                () = shutdown.cancelled() => return,
                built = building => match built {
                    Ok(bundle) => bundle,
                    Err(error) => {
                        tracing::error!(%error, "building the log bundle failed");
                        return;
                    }
                },
            };
            tracing::info!(
                command = command_id,
                bytes = bundle.tar.len(),
                files = bundle.files,
                skipped = bundle.skipped,
                "sending the log bundle"
            );
            let pieces: Vec<&[u8]> = bundle.tar.chunks(CHUNK_BYTES).collect();
            let count = pieces.len();
            for (index, data) in pieces.into_iter().enumerate() {
                let last = index + 1 == count;
                let chunk = proto::BundleChunk {
                    command_id: command_id.clone(),
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    data: data.to_vec(),
                    last,
                    files: if last { bundle.files } else { 0 },
                    skipped: if last { bundle.skipped } else { 0 },
                };
                let message = AgentMessage {
                    body: Some(agent_message::Body::Bundle(chunk)),
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    sent = out.send(message) => if sent.is_err() {
                        tracing::warn!(command = command_id, "the stream ended while sending the log bundle");
                        return;
                    },
                }
            }
        });
        None
    }
}
