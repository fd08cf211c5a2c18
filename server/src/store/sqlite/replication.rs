//! The SQLite store's ReplicationStore: replication: leases and wake-ups between replicas.

use super::*;

#[async_trait]
impl ReplicationStore for SqliteStore {
    async fn try_lease(&self, _name: &str, _holder: &str, _ttl_ms: i64) -> StoreResult<bool> {
        // One process owns the SQLite file: it holds every lease.
        Ok(true)
    }

    async fn release_lease(&self, _name: &str, _holder: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn notify(&self, _notice: crate::store::Notice) -> StoreResult<()> {
        Ok(())
    }

    async fn subscribe(
        &self,
        _shutdown: tokio_util::sync::CancellationToken,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<crate::store::Notice>>> {
        Ok(None)
    }
}
