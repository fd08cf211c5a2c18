//! The rows of the roster (docs/ROSTER.md), shared by both stores: every
//! endpoint the managed product lists, from Apex Central or a console
//! export, and how the last refresh went.
//!
//! A refresh replaces the whole roster, never half of it, and never holds
//! the store's writer for long: its entries are written in batches of
//! [`BATCH`] under a new *generation*, each batch its own short
//! transaction, and one small transaction then makes that generation the
//! current one. Readers only see the current generation, so until that
//! switch they see the old roster whole, and after it the new one whole.
//! Older generations (and those a crash abandoned) are deleted afterwards,
//! in batches too.

/// Entries written or deleted per transaction.
pub const BATCH: usize = 5000;

/// One endpoint as the product lists it. Lists are stored comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterEntry {
    pub host_name: String,
    pub entity_id: String,
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    /// The product version; `None` when the source gives none.
    pub version: Option<String>,
    pub connection_status: Option<String>,
    pub managing_server: Option<String>,
    pub domain: Option<String>,
    pub folder_path: Option<String>,
    pub os: Option<String>,
    pub product: Option<String>,
}

/// Where the roster stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterStatusRow {
    /// `apex_central`, `csv:<file>`; empty before the first roster.
    pub source: String,
    pub entries: u64,
    /// When the current roster was stored; `None` before the first.
    pub refreshed_at_ms: Option<i64>,
    /// The last failed pass, cleared by a good one.
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    /// The current generation (0 before the first roster): a refresh
    /// anywhere, on any replica, changes it (the roster cache's key).
    pub generation: i64,
}

pub(crate) fn join(list: &[String]) -> String {
    list.join(",")
}

pub(crate) fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_string)
        .collect()
}

/// The roster as last read, per generation: status, stragglers, the report
/// and the dashboard each join the roster with a fleet snapshot, and with
/// 100,000 entries reading them (and indexing them for matching) on every
/// call costs more than the call. Callers still read the roster's status
/// row each time (one small row naming the current generation); the
/// entries are read again only when that generation is not the cached one.
/// Replicas sharing PostgreSQL each keep their own cache and see another
/// replica's refresh by the same check.
///
/// What the matcher derives from the entries (its index) is kept beside
/// them, type-erased: the store does not know the matcher
/// (the roster module's `cache.rs` names the type).
#[derive(Debug, Default)]
pub struct RosterCache {
    /// Held across a load, so concurrent callers on a new generation read
    /// the entries once.
    slot: tokio::sync::Mutex<Option<CachedRoster>>,
    loads: std::sync::atomic::AtomicU64,
}

/// One generation's entries and what was derived from them.
#[derive(Clone)]
pub struct CachedRoster {
    pub generation: i64,
    pub entries: std::sync::Arc<Vec<RosterEntry>>,
    pub derived: std::sync::Arc<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for CachedRoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRoster")
            .field("generation", &self.generation)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl RosterCache {
    /// The entries of the generation `status` names, read from `store` (and
    /// `derive` run over them) when it is not the cached one.
    ///
    /// The entries are read after the status: when a refresh switches
    /// generations in between, they are the newer ones under the older
    /// number, and the next call, seeing the newer number, reads them again.
    pub async fn get<S, D>(&self, store: &S, status: &RosterStatusRow, derive: D) -> super::StoreResult<CachedRoster>
    where
        S: super::traits::RosterStore + ?Sized,
        D: FnOnce(&[RosterEntry]) -> std::sync::Arc<dyn std::any::Any + Send + Sync>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref().filter(|cached| cached.generation == status.generation) {
            return Ok(cached.clone());
        }
        let entries = store.roster_entries().await?;
        let derived = derive(&entries);
        let cached = CachedRoster {
            generation: status.generation,
            entries: std::sync::Arc::new(entries),
            derived,
        };
        self.loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *slot = Some(cached.clone());
        Ok(cached)
    }

    /// How many times the entries were read from the store.
    pub fn loads(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_through_their_column() {
        let list = vec!["10.0.0.1".to_string(), "fe80::1".to_string()];
        assert_eq!(split(&join(&list)), list);
        assert!(split("").is_empty());
        assert_eq!(split(" a, ,b "), vec!["a", "b"]);
    }
}
