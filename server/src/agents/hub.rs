//! Live agent streams on this coordinator: agent id → the sender of its
//! outbound stream.
//!
//! Each stream's outbound queue is bounded ([`OUTBOUND_CAPACITY`]) and
//! nothing pushed from outside the stream waits for room (`try_send`): what
//! finds the queue full is not lost, it goes out another way.
//! Acknowledgements are cumulative, so a dropped one is covered by the next;
//! a command stays undelivered in the store (commands are rows first) and
//! goes out when the agent reconnects or, with several replicas, at the next
//! sweep; a policy reaches the agent at its next hello, which carries the
//! version it holds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rollcall_common::proto::CoordinatorMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

pub const OUTBOUND_CAPACITY: usize = 64;

pub type Outbound = mpsc::Sender<Result<CoordinatorMessage, Status>>;

#[derive(Clone)]
pub struct Session {
    pub id: u64,
    pub tx: Outbound,
    pub cancel: CancellationToken,
}

#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, Session>>,
    next_id: AtomicU64,
}

impl Hub {
    /// Registers a new stream for `agent_id`, cutting an older one (an agent
    /// that reconnects before its old stream timed out, or a second copy of
    /// its key): at most one live stream per agent here. True with the
    /// session when an older one was replaced.
    pub fn register(&self, agent_id: &str, tx: Outbound, cancel: CancellationToken) -> (Session, bool) {
        let session = Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            tx,
            cancel,
        };
        let previous = self
            .sessions
            .lock()
            .ok()
            .and_then(|mut sessions| sessions.insert(agent_id.to_string(), session.clone()));
        let replaced = previous.is_some();
        if let Some(previous) = previous {
            let _ = previous
                .tx
                .try_send(Err(Status::aborted("a newer stream of this agent replaced this one")));
            previous.cancel.cancel();
        }
        (session, replaced)
    }

    /// Removes the session if it is still the current one.
    pub fn unregister(&self, agent_id: &str, session_id: u64) {
        if let Ok(mut sessions) = self.sessions.lock()
            && sessions.get(agent_id).is_some_and(|current| current.id == session_id)
        {
            sessions.remove(agent_id);
        }
    }

    pub fn get(&self, agent_id: &str) -> Option<Session> {
        self.sessions.lock().ok()?.get(agent_id).cloned()
    }

    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.sessions
            .lock()
            .is_ok_and(|sessions| sessions.contains_key(agent_id))
    }

    pub fn len(&self) -> usize {
        self.sessions.lock().map(|sessions| sessions.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live session (for broadcasts such as a new policy).
    pub fn all(&self) -> Vec<(String, Session)> {
        self.sessions
            .lock()
            .map(|sessions| sessions.iter().map(|(id, s)| (id.clone(), s.clone())).collect())
            .unwrap_or_default()
    }

    /// Ends the agent's stream with `status`; true when it had one here.
    pub fn disconnect(&self, agent_id: &str, status: Status) -> bool {
        let session = self
            .sessions
            .lock()
            .ok()
            .and_then(|mut sessions| sessions.remove(agent_id));
        match session {
            Some(session) => {
                // Best effort: the status tells the agent why; the cancel ends the stream regardless.
                let _ = session.tx.try_send(Err(status));
                session.cancel.cancel();
                true
            }
            None => false,
        }
    }
}
