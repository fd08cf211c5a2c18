//! The PostgreSQL store's CommandStore: commands to agents: created, delivered, expired, tallied.

use super::*;

#[async_trait]
impl CommandStore for PgStore {
    async fn create_commands(&self, commands: Vec<CommandRow>) -> StoreResult<()> {
        if commands.is_empty() {
            return Ok(());
        }
        let mut columns: (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            Vec<Option<i64>>,
        ) = Default::default();
        for command in commands {
            columns.0.push(command.id);
            columns.1.push(command.batch_id);
            columns.2.push(command.agent_id);
            columns.3.push(i64::from(command.kind));
            columns.4.push(command.rollout_id);
            columns.5.push(command.target);
            columns.6.push(command.origin);
            columns.7.push(i64::from(command.splay_ms));
            columns.8.push(command.created_at_ms);
            columns.9.push(command.expires_at_ms);
            columns.10.push(command.delivered_at_ms);
        }
        self.execute(
            "INSERT INTO commands (id, batch_id, agent_id, kind, rollout_id, target, origin, splay_ms, created_at,
                expires_at, delivered_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                                  $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])",
            &[
                &columns.0,
                &columns.1,
                &columns.2,
                &columns.3,
                &columns.4,
                &columns.5,
                &columns.6,
                &columns.7,
                &columns.8,
                &columns.9,
                &columns.10,
            ],
        )
        .await?;
        Ok(())
    }

    async fn undelivered_commands(&self, agent_id: &str, now_ms: i64) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query(
                &format!(
                    "SELECT * FROM commands WHERE agent_id = $1 AND delivered_at IS NULL AND NOT expired
                     AND expires_at > $2 ORDER BY created_at, id {C}"
                ),
                &[&agent_id, &now_ms],
            )
            .await?;
        map_rows(rows, rows::command)
    }

    async fn mark_delivered(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE commands SET delivered_at = $2 WHERE id = ANY($1) AND delivered_at IS NULL",
            &[&ids, &at_ms],
        )
        .await?;
        Ok(())
    }

    async fn expire_commands(&self, now_ms: i64) -> StoreResult<u64> {
        self.execute(
            "UPDATE commands SET expired = true WHERE delivered_at IS NULL AND NOT expired AND expires_at <= $1",
            &[&now_ms],
        )
        .await
    }

    async fn batch_commands(&self, batch_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query("SELECT * FROM commands WHERE batch_id = $1", &[&batch_id])
            .await?;
        map_rows(rows, rows::command)
    }

    async fn batch_tally(&self, batch_id: &str) -> StoreResult<crate::store::BatchTally> {
        let rows = self.query(crate::store::BATCH_TALLY_SQL, &[&batch_id]).await?;
        let mut tally = crate::store::BatchTally::default();
        for row in &rows {
            let state: String = row.try_get(0).map_err(map_err)?;
            tally.add(
                &state,
                row.try_get(1).map_err(map_err)?,
                row.try_get(2).map_err(map_err)?,
            );
        }
        Ok(tally)
    }

    async fn rollout_commands(&self, rollout_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query(
                &format!("SELECT * FROM commands WHERE rollout_id = $1 ORDER BY created_at, id {C}"),
                &[&rollout_id],
            )
            .await?;
        map_rows(rows, rows::command)
    }

    async fn undelivered_for_agents(
        &self,
        agent_ids: Option<Vec<String>>,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<CommandRow>> {
        let limit = i64::from(limit);
        let rows = match agent_ids {
            Some(ids) => {
                self.query(
                    &format!(
                        "SELECT * FROM commands WHERE agent_id = ANY($1) AND delivered_at IS NULL AND NOT expired
                         AND expires_at > $2 ORDER BY created_at, id {C} LIMIT $3"
                    ),
                    &[&ids, &now_ms, &limit],
                )
                .await?
            }
            None => {
                self.query(
                    &format!(
                        "SELECT * FROM commands WHERE delivered_at IS NULL AND NOT expired AND expires_at > $1
                         ORDER BY created_at, id {C} LIMIT $2"
                    ),
                    &[&now_ms, &limit],
                )
                .await?
            }
        };
        map_rows(rows, rows::command)
    }

    async fn claim_delivery(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "UPDATE commands SET delivered_at = $2 WHERE id = ANY($1) AND delivered_at IS NULL AND NOT expired
                 RETURNING id",
                &[&ids, &at_ms],
            )
            .await?;
        map_rows(rows, |row| row.try_get(0))
    }

    async fn release_delivery(&self, ids: Vec<String>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE commands SET delivered_at = NULL WHERE id = ANY($1) AND answered_at IS NULL",
            &[&ids],
        )
        .await?;
        Ok(())
    }
}
