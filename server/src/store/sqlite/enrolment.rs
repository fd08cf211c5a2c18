//! The SQLite store's EnrolmentStore: enrolment: tokens, agents enrolled and revoked, their certificates.

use super::*;

#[async_trait]
impl EnrolmentStore for SqliteStore {
    async fn create_token(&self, token: NewToken) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tokens (id, hash, created_at, expires_at, uses_left, uses_total, labels, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
                params![
                    token.id,
                    token.hash.as_slice(),
                    token.created_at_ms,
                    token.expires_at_ms,
                    token.uses,
                    labels_json(&token.labels),
                    token.created_by
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare("SELECT id, created_at, expires_at, uses_left, uses_total, labels, revoked, created_by FROM tokens ORDER BY created_at")
                .map_err(map_err)?;
            let rows = statement
                .query_map([], |row| rows::token(row))
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |conn| {
            let changed = conn
                .execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])
                .map_err(map_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn check_token(&self, token_hash: [u8; 32], now_ms: i64) -> StoreResult<()> {
        self.read(move |conn| {
            let token = conn
                .query_row(
                    "SELECT expires_at, uses_left, revoked FROM tokens WHERE hash = ?1",
                    [token_hash.as_slice()],
                    |row| rows::token_state(row),
                )
                .optional()
                .map_err(map_err)?;
            let Some(token) = token else {
                return Err(StoreError::TokenUnknown);
            };
            token.usable(now_ms)
        })
        .await
    }

    async fn enroll_agent(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
        agent: NewAgent,
    ) -> StoreResult<BTreeMap<String, String>> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let token = tx
                .query_row(
                    "SELECT id, expires_at, uses_left, revoked, labels FROM tokens WHERE hash = ?1",
                    [token_hash.as_slice()],
                    |row| {
                        Ok((
                            row.get::<_, String>("id")?,
                            rows::token_state(row)?,
                            row.get::<_, String>("labels")?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            let Some((token_id, state, labels)) = token else {
                return Err(StoreError::TokenUnknown);
            };
            state.usable(now_ms)?;
            tx.execute("UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?1", [&token_id])
                .map_err(map_err)?;
            let labels = labels_from_json(&labels);
            tx.execute(
                "INSERT INTO agents (id, hostname, labels, bound_labels, enrolled_at) VALUES (?1, ?2, ?3, ?3, ?4)",
                params![agent.id, agent.hostname, labels_json(&labels), agent.enrolled_at_ms],
            )
            .map_err(map_err)?;
            tx.execute(
                "INSERT INTO certificates (serial, agent_id, not_after) VALUES (?1, ?2, ?3)",
                params![agent.cert_serial, agent.id, agent.cert_not_after_ms],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(labels)
        })
        .await
    }

    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()> {
        let (agent_id, serial) = (agent_id.to_string(), serial.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO certificates (serial, agent_id, not_after) VALUES (?1, ?2, ?3)",
                params![serial, agent_id, not_after_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let changed = tx
                .execute(
                    "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2), connected = 0 WHERE id = ?1",
                    params![id, at_ms],
                )
                .map_err(map_err)?;
            tx.execute("UPDATE certificates SET revoked = 1 WHERE agent_id = ?1", [&id])
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn revoked(&self) -> StoreResult<RevokedSets> {
        self.read(|conn| {
            let collect = |sql: &str| -> StoreResult<Vec<String>> {
                let mut statement = conn.prepare(sql).map_err(map_err)?;
                let rows = statement
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            };
            Ok(RevokedSets {
                agent_ids: collect("SELECT id FROM agents WHERE revoked_at IS NOT NULL")?,
                serials: collect(
                    "SELECT serial FROM certificates WHERE revoked != 0
                     UNION SELECT serial FROM admin_certificates WHERE revoked_at IS NOT NULL",
                )?,
            })
        })
        .await
    }
}
