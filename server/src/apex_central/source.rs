//! The roster's source as the coordinator holds it (`state::Coordinator`
//! holds one). The passes (`roster/mod.rs`) take the coordinator, so the
//! source lives here, apart from them: the two do not import each other.

use std::time::Duration;

use super::ApexCentral;

/// The roster's source as the coordinator holds it.
#[derive(Debug, Default)]
pub struct RosterSource {
    pub apex_central: Option<ApexCentral>,
    pub refresh_every: Duration,
    /// One pass or import at a time on this coordinator.
    pub(crate) pass: tokio::sync::Mutex<()>,
    /// The current roster generation's entries and match index, so status,
    /// stragglers and the report do not read the whole roster each call
    /// (in the store's module: this source names no roster pass).
    pub cache: crate::store::roster::RosterCache,
}

impl RosterSource {
    pub fn new(apex_central: Option<ApexCentral>, refresh_every: Duration) -> Self {
        RosterSource {
            apex_central,
            refresh_every,
            pass: tokio::sync::Mutex::new(()),
            cache: crate::store::roster::RosterCache::default(),
        }
    }
}
