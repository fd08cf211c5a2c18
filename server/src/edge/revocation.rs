//! The in-memory revocation list the TLS verifier consults on every
//! handshake. Loaded from the store at start; updated on every revoke (and,
//! with several replicas, refreshed from the store).

use std::collections::HashSet;
use std::sync::RwLock;

use rollcall_common::tls::RevocationCheck;

use crate::store::RevokedSets;

#[derive(Debug)]
pub struct RevocationList {
    inner: RwLock<Sets>,
    /// Bumped on every change, so long-lived calls (`watch`) can look again
    /// at their caller's certificate without polling.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Default for RevocationList {
    fn default() -> Self {
        RevocationList {
            inner: RwLock::default(),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Sets {
    agent_ids: HashSet<String>,
    serials: HashSet<String>,
}

impl RevocationList {
    pub fn replace(&self, sets: RevokedSets) {
        if let Ok(mut inner) = self.inner.write() {
            inner.agent_ids = sets.agent_ids.into_iter().collect();
            inner.serials = sets.serials.into_iter().collect();
        }
        self.changed();
    }

    pub fn revoke_agent(&self, agent_id: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.agent_ids.insert(agent_id.to_string());
        }
        self.changed();
    }

    pub fn revoke_serial(&self, serial: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.serials.insert(serial.to_string());
        }
        self.changed();
    }

    /// Wakes whoever holds a [`RevocationList::subscribe`] receiver.
    fn changed(&self) {
        self.generation
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// A receiver that sees every later change of the list.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

impl RevocationCheck for RevocationList {
    fn is_revoked(&self, serial_hex: &str, agent_id: Option<&str>) -> bool {
        match self.inner.read() {
            Ok(inner) => inner.serials.contains(serial_hex) || agent_id.is_some_and(|id| inner.agent_ids.contains(id)),
            // A poisoned lock means a writer panicked: fail closed.
            Err(_) => true,
        }
    }
}
