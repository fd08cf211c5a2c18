//! The in-memory revocation list the TLS verifier consults on every
//! handshake. Loaded from the store at start; updated on every revoke (and,
//! with several replicas, refreshed from the store).

use std::collections::HashSet;
use std::sync::RwLock;

use rollcall_common::tls::RevocationCheck;

use crate::store::RevokedSets;

#[derive(Debug, Default)]
pub struct RevocationList {
    inner: RwLock<Sets>,
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
    }

    pub fn revoke_agent(&self, agent_id: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.agent_ids.insert(agent_id.to_string());
        }
    }

    pub fn revoke_serial(&self, serial: &str) {
        if let Ok(mut inner) = self.inner.write() {
            inner.serials.insert(serial.to_string());
        }
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
