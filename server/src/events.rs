//! Events for `rollcall watch`: state changes, new stragglers, command
//! outcomes. A broadcast channel with a bound ([`CAPACITY`]): a watcher that
//! falls behind is told how many it missed instead of slowing the
//! coordinator.

use serde::Serialize;

pub const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// RFC 3339.
    pub at: String,
    /// state_change, straggler, command, agent_connected, agent_disconnected.
    pub kind: String,
    pub agent_id: String,
    pub hostname: String,
    pub rollout_id: String,
    pub from: String,
    pub to: String,
    pub cause: String,
    pub detail: String,
}
