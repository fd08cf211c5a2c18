//! The probe's mTLS identity: its key (generated here, never sent
//! anywhere), its certificate and the coordinator's CA.
//!
//! Kept in files under the data dir with owner-only permissions, or in
//! memory for the fleet simulator.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use rollcall_common::files::{ensure_owner_only, read_bounded_utf8, write_atomic};
use rollcall_common::pki::{cert_facts, first_cert_der};
use rollcall_common::secret::Secret;
use time::OffsetDateTime;

use crate::config::IdentityPaths;

const MAX_PEM: u64 = 64 * 1024;

/// PEM texts of one identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: Secret,
}

impl Identity {
    /// When the certificate stops being valid, and when it started.
    pub fn validity(&self) -> anyhow::Result<(OffsetDateTime, OffsetDateTime)> {
        let facts = cert_facts(&first_cert_der(&self.cert_pem)?)?;
        Ok((facts.not_before, facts.not_after))
    }

    /// True once half the certificate's life has passed (time to renew).
    pub fn needs_renewal(&self, now: OffsetDateTime) -> bool {
        match self.validity() {
            Ok((not_before, not_after)) => now >= not_before + (not_after - not_before) / 2,
            Err(_) => false,
        }
    }
}

/// Where an identity is kept.
#[derive(Debug, Clone)]
pub enum IdentityStore {
    Files(IdentityPaths),
    Memory(Arc<Mutex<Identity>>),
}

impl IdentityStore {
    pub fn load(&self) -> anyhow::Result<Identity> {
        match self {
            IdentityStore::Files(paths) => {
                ensure_owner_only(&paths.key).context("check the agent key's permissions")?;
                Ok(Identity {
                    ca_pem: read_bounded_utf8(&paths.ca, MAX_PEM)?,
                    cert_pem: read_bounded_utf8(&paths.cert, MAX_PEM)?,
                    key_pem: Secret::new(read_bounded_utf8(&paths.key, MAX_PEM)?),
                })
            }
            IdentityStore::Memory(identity) => identity
                .lock()
                .map(|identity| identity.clone())
                .map_err(|_| anyhow::anyhow!("identity lock poisoned")),
        }
    }

    pub fn save(&self, identity: &Identity) -> anyhow::Result<()> {
        match self {
            IdentityStore::Files(paths) => {
                // Key first: a crash between the writes leaves a new key with
                // the old certificate, which the next renewal repairs.
                write_atomic(&paths.key, identity.key_pem.expose().as_bytes(), true)?;
                write_atomic(&paths.cert, identity.cert_pem.as_bytes(), false)?;
                write_atomic(&paths.ca, identity.ca_pem.as_bytes(), false)?;
                Ok(())
            }
            IdentityStore::Memory(slot) => {
                let mut slot = slot.lock().map_err(|_| anyhow::anyhow!("identity lock poisoned"))?;
                *slot = identity.clone();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_carries_the_key() {
        let identity = Identity {
            ca_pem: "ca".into(),
            cert_pem: "cert".into(),
            key_pem: Secret::new("-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n"),
        };
        let printed = format!("{identity:?}");
        assert!(!printed.contains("SECRETBYTES"), "{printed}");
    }
}
