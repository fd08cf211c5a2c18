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
    /// When the stream was registered (ms): which of two streams of one
    /// agent on two replicas is the newer.
    pub opened_at_ms: i64,
    /// The serial of the certificate the stream was opened with.
    pub serial: String,
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
    pub fn register(&self, agent_id: &str, serial: &str, tx: Outbound, cancel: CancellationToken) -> (Session, bool) {
        let session = Session {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            tx,
            cancel,
            opened_at_ms: rollcall_common::timefmt::now_ms(),
            serial: serial.to_string(),
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

    /// Ends the agent's stream here when another replica's, opened at
    /// `other_opened_at_ms`, is newer (`other_wins_tie`: which one survives
    /// two opened in the same millisecond). True when one was ended.
    pub fn end_if_older(&self, agent_id: &str, other_opened_at_ms: i64, other_wins_tie: bool, status: Status) -> bool {
        let older = |session: &Session| {
            session.opened_at_ms < other_opened_at_ms || (session.opened_at_ms == other_opened_at_ms && other_wins_tie)
        };
        let session = self.sessions.lock().ok().and_then(|mut sessions| {
            if sessions.get(agent_id).is_some_and(older) {
                sessions.remove(agent_id)
            } else {
                None
            }
        });
        match session {
            Some(session) => {
                let _ = session.tx.try_send(Err(status));
                session.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The time the agent's stream here was opened, if it has one.
    pub fn opened_at_ms(&self, agent_id: &str) -> Option<i64> {
        self.sessions
            .lock()
            .ok()?
            .get(agent_id)
            .map(|session| session.opened_at_ms)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_older_stream_is_ended_by_another_replicas_newer_one() {
        let hub = Hub::default();
        let (tx, mut rx) = mpsc::channel(4);
        let (session, _) = hub.register("a", "serial-1", tx, CancellationToken::new());
        let opened = session.opened_at_ms;
        // Another replica's stream opened before this one: this one stays.
        assert!(!hub.end_if_older("a", opened - 1, true, Status::aborted("replaced")));
        // Opened in the same millisecond: the tie decides.
        assert!(!hub.end_if_older("a", opened, false, Status::aborted("replaced")));
        assert!(hub.is_connected("a"));
        // Newer: this one ends, with the status and its cancel.
        assert!(hub.end_if_older("a", opened + 1, false, Status::aborted("replaced")));
        assert!(!hub.is_connected("a"));
        assert!(session.cancel.is_cancelled());
        let ended = rx.try_recv().expect("a status was sent");
        assert_eq!(ended.err().map(|status| status.code()), Some(tonic::Code::Aborted));
        assert!(!hub.end_if_older("b", opened + 1, true, Status::aborted("replaced")));
    }
}
