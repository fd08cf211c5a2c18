//! The SQLite store's PresenceStore: presence: agents connecting, disconnecting, heartbeats.

use super::*;

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<Connected> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue_presence(PresenceJob::Connected(Box::new(hello), reply))?;
        answer
            .await
            .map_err(|_| StoreError::Other("store presence job failed".into()))?
    }

    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue_presence(PresenceJob::Disconnected(agent_id.to_string(), at_ms, reply))?;
        answer
            .await
            .map_err(|_| StoreError::Other("store presence job failed".into()))?
    }

    async fn reset_connections(&self) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute("UPDATE agents SET connected = 0 WHERE connected != 0", [])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut statement = tx
                    .prepare_cached("UPDATE agents SET last_seen = max(last_seen, ?2) WHERE id = ?1")
                    .map_err(map_err)?;
                for (agent_id, at_ms) in &seen {
                    statement.execute(params![agent_id, at_ms]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }
}
