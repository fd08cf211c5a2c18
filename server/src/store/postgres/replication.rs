//! The PostgreSQL store's ReplicationStore: replication: leases and wake-ups between replicas.

use super::*;

#[async_trait]
impl ReplicationStore for PgStore {
    async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, {DB_NOW_MS} + $3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < {DB_NOW_MS}
                     RETURNING holder"
                ),
                &[&name, &holder, &ttl_ms],
            )
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(())
    }

    async fn notify(&self, notice: Notice) -> StoreResult<()> {
        let payload = encode_notice(&self.replica, notice);
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
        Ok(())
    }

    async fn subscribe(&self, shutdown: CancellationToken) -> StoreResult<Option<mpsc::Receiver<Notice>>> {
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        let target = self.pool.target.clone();
        let replica = self.replica.clone();
        let closed = self.pool.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listen(target, replica, tx, shutdown) => {}
                () = closed.cancelled() => {}
            }
        });
        Ok(Some(rx))
    }
}
