//! Recheck and update-now commands: judged against the coordinator's clock
//! and the agent's own config, then queued as check jobs. (Collect has its
//! own path, [`crate::collect`].)

use std::time::Duration;

use rollcall_common::proto;
use rollcall_common::timefmt::now_ms;

use super::check_jobs::CheckJob;
use super::state::AgentState;

/// The longest splay a command may ask for, whatever it says.
const MAX_SPLAY_MS: u32 = 600_000;

impl AgentState {
    /// Queues the command's check job if it may run; returns the receipt to
    /// send, or none for an accepted recheck, whose report (within the
    /// splay) is its acknowledgement.
    pub fn handle_command(&mut self, command: &proto::Command) -> Option<proto::CommandReceipt> {
        let refused = |reason: &str| {
            Some(proto::CommandReceipt {
                command_id: command.id.clone(),
                accepted: false,
                reason: reason.to_string(),
            })
        };
        if self.coordinator_clock.expired_at(command.expires_at_ms, now_ms()) {
            return refused("expired");
        }
        if !command.target_version.is_empty() {
            self.target_version = Some(command.target_version.clone());
        }
        let (kind, update_now) = match proto::CommandKind::try_from(command.kind) {
            Ok(proto::CommandKind::Recheck) => (proto::ReportKind::Recheck, false),
            // The agent runs only the action its own config allows.
            Ok(proto::CommandKind::UpdateNow) if !self.options.update_allowed => {
                return refused("no update_command is configured in agent.toml");
            }
            Ok(proto::CommandKind::UpdateNow) => (proto::ReportKind::UpdateNowServer, true),
            _ => return refused("unknown command"),
        };
        let job = CheckJob {
            kind,
            command_id: command.id.clone(),
            splay: Duration::from_millis(u64::from(command.splay_ms.min(MAX_SPLAY_MS))),
            update_now,
        };
        if !self.enqueue(job) {
            return refused("agent busy; check queue full");
        }
        update_now.then(|| proto::CommandReceipt {
            command_id: command.id.clone(),
            accepted: true,
            reason: String::new(),
        })
    }
}
