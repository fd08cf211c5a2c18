//! Events for `rollcall watch`: state changes, new stragglers, command
//! outcomes. A broadcast channel with a bound ([`CAPACITY`]): a watcher that
//! falls behind is told how many it missed instead of slowing the
//! coordinator.

use serde::Serialize;

pub const CAPACITY: usize = 4096;

/// What happened; its word is what `rollcall watch` shows and filters on.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A rollout member changed state.
    StateChange,
    /// A member became a soft straggler (its first change into that state).
    Straggler,
    /// An agent's stream opened on this coordinator.
    AgentConnected,
}

impl EventKind {
    /// The word on the wire (`proto::Event.kind`).
    pub fn word(self) -> &'static str {
        match self {
            EventKind::StateChange => "state_change",
            EventKind::Straggler => "straggler",
            EventKind::AgentConnected => "agent_connected",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// RFC 3339.
    pub at: String,
    pub kind: EventKind,
    pub agent_id: String,
    pub hostname: String,
    pub rollout_id: String,
    pub from: String,
    pub to: String,
    pub cause: String,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serialised word and the wire word agree.
    #[test]
    fn each_kind_has_one_word() {
        for kind in [EventKind::StateChange, EventKind::Straggler, EventKind::AgentConnected] {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.word()));
        }
    }
}
