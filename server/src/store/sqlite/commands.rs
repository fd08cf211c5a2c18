//! The SQLite store's CommandStore: commands to agents: created, delivered, expired, tallied.

use super::*;

#[async_trait]
impl CommandStore for SqliteStore {
    async fn create_commands(&self, commands: Vec<CommandRow>) -> StoreResult<()> {
        if commands.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO commands (id, batch_id, agent_id, kind, rollout_id, target, origin, splay_ms, created_at,
                            expires_at, delivered_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(map_err)?;
                for command in &commands {
                    insert
                        .execute(params![
                            command.id,
                            command.batch_id,
                            command.agent_id,
                            command.kind,
                            command.rollout_id,
                            command.target,
                            command.origin,
                            command.splay_ms,
                            command.created_at_ms,
                            command.expires_at_ms,
                            command.delivered_at_ms
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn undelivered_commands(&self, agent_id: &str, now_ms: i64) -> StoreResult<Vec<CommandRow>> {
        let agent_id = agent_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT * FROM commands WHERE agent_id = ?1 AND delivered_at IS NULL AND expired = 0 AND expires_at > ?2 ORDER BY created_at",
                params![agent_id, now_ms],
                |row| rows::command(row),
            )
        })
        .await
    }

    async fn mark_delivered(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut update = tx
                    .prepare_cached("UPDATE commands SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL")
                    .map_err(map_err)?;
                for id in &ids {
                    update.execute(params![id, at_ms]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn expire_commands(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE commands SET expired = 1 WHERE delivered_at IS NULL AND expired = 0 AND expires_at <= ?1",
                    [now_ms],
                )
                .map_err(map_err)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn batch_commands(&self, batch_id: &str) -> StoreResult<Vec<CommandRow>> {
        let batch_id = batch_id.to_string();
        self.read(move |conn| {
            query_all(conn, "SELECT * FROM commands WHERE batch_id = ?1", [batch_id], |row| {
                rows::command(row)
            })
        })
        .await
    }

    async fn batch_tally(&self, batch_id: &str) -> StoreResult<crate::store::BatchTally> {
        let batch_id = batch_id.to_string();
        self.read(move |conn| {
            let mut statement = conn
                // SQLite reads `$1` as a parameter bound by position, too.
                .prepare_cached(crate::store::BATCH_TALLY_SQL)
                .map_err(map_err)?;
            let mut rows = statement.query([batch_id]).map_err(map_err)?;
            let mut tally = crate::store::BatchTally::default();
            while let Some(row) = rows.next().map_err(map_err)? {
                let state: String = row.get(0).map_err(map_err)?;
                tally.add(&state, row.get(1).map_err(map_err)?, row.get(2).map_err(map_err)?);
            }
            Ok(tally)
        })
        .await
    }

    async fn rollout_commands(&self, rollout_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rollout_id = rollout_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT * FROM commands WHERE rollout_id = ?1 ORDER BY created_at",
                [rollout_id],
                |row| rows::command(row),
            )
        })
        .await
    }

    async fn undelivered_for_agents(
        &self,
        agent_ids: Option<Vec<String>>,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<CommandRow>> {
        self.read(move |conn| match agent_ids {
            None => query_all(
                conn,
                "SELECT * FROM commands WHERE delivered_at IS NULL AND expired = 0 AND expires_at > ?1
                 ORDER BY created_at, id LIMIT ?2",
                params![now_ms, limit],
                |row| rows::command(row),
            ),
            Some(ids) => query_all(
                conn,
                "SELECT * FROM commands WHERE agent_id IN (SELECT value FROM json_each(?1))
                 AND delivered_at IS NULL AND expired = 0 AND expires_at > ?2
                 ORDER BY created_at, id LIMIT ?3",
                params![
                    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()),
                    now_ms,
                    limit
                ],
                |row| rows::command(row),
            ),
        })
        .await
    }

    async fn claim_delivery(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let mut claimed = Vec::new();
            {
                let mut update = tx
                    .prepare_cached(
                        "UPDATE commands SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL AND expired = 0",
                    )
                    .map_err(map_err)?;
                for id in ids {
                    if update.execute(params![id, at_ms]).map_err(map_err)? > 0 {
                        claimed.push(id);
                    }
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(claimed)
        })
        .await
    }

    async fn release_delivery(&self, ids: Vec<String>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut update = tx
                    .prepare_cached("UPDATE commands SET delivered_at = NULL WHERE id = ?1 AND answered_at IS NULL")
                    .map_err(map_err)?;
                for id in &ids {
                    update.execute([id]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }
}
