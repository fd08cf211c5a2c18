//! The `retention` lease: one replica at a time runs the retention task
//! ([`crate::retention`], [`crate::retention_prune`]); a long pass renews it
//! between batches and stops when it lapsed (another replica goes on).

use crate::state::Coordinator;

/// The lease a pass runs under (see [`crate::store::Store::try_lease`]).
pub const LEASE: &str = "retention";

/// Takes or renews the lease for `replica`; false when another holds it or
/// the store did not answer (logged).
pub async fn take_lease(coordinator: &Coordinator, replica: &str) -> bool {
    let ttl_ms = i64::try_from(coordinator.config.engine_lease_ttl.as_millis()).unwrap_or(i64::MAX);
    match coordinator.store.try_lease(LEASE, replica, ttl_ms).await {
        Ok(granted) => granted,
        Err(error) => {
            tracing::warn!(%error, "could not take the retention lease");
            false
        }
    }
}
