//! The roster as last read, per generation: status, stragglers, the report
//! and the dashboard each join the roster with a fleet snapshot, and with
//! 100,000 entries reading them (and indexing them for matching) on every
//! call costs more than the call. Every call still reads the roster's
//! status row (one small row, which names the current generation); the
//! entries are read again only when that generation is not the cached one.
//! Replicas sharing PostgreSQL each keep their own cache and see another
//! replica's refresh by the same generation check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::StoreResult;
use crate::store::roster::{RosterEntry, RosterStatusRow};
use crate::store::traits::RosterStore;

use super::reconcile::Index;

/// One generation's entries and their index.
#[derive(Debug, Clone)]
pub struct Cached {
    pub generation: i64,
    pub entries: Arc<Vec<RosterEntry>>,
    pub index: Arc<Index>,
}

#[derive(Debug, Default)]
pub struct RosterCache {
    /// Held across a load, so concurrent callers on a new generation read
    /// the entries once.
    slot: tokio::sync::Mutex<Option<Cached>>,
    loads: AtomicU64,
}

impl RosterCache {
    /// The entries of the generation `status` names (read from `store`
    /// when it is not the cached one).
    ///
    /// The entries are read after the status: when a refresh switches
    /// generations in between, they are the newer ones under the older
    /// number, and the next call, seeing the newer number, reads them again.
    pub async fn get<S: RosterStore + ?Sized>(&self, store: &S, status: &RosterStatusRow) -> StoreResult<Cached> {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref().filter(|cached| cached.generation == status.generation) {
            return Ok(cached.clone());
        }
        let entries = store.roster_entries().await?;
        let index = Index::new(&entries);
        let cached = Cached {
            generation: status.generation,
            entries: Arc::new(entries),
            index: Arc::new(index),
        };
        self.loads.fetch_add(1, Ordering::Relaxed);
        *slot = Some(cached.clone());
        Ok(cached)
    }

    /// How many times the entries were read from the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}
