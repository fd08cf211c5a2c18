//! The PostgreSQL store's EnrolmentStore: enrolment: tokens, agents enrolled and revoked, their certificates.

use super::*;

#[async_trait]
impl EnrolmentStore for PgStore {
    async fn create_token(&self, token: NewToken) -> StoreResult<()> {
        self.execute(
            "INSERT INTO tokens (id, hash, created_at, expires_at, uses_left, uses_total, labels, created_by)
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
            &[
                &token.id,
                &token.hash.as_slice(),
                &token.created_at_ms,
                &token.expires_at_ms,
                &i64::from(token.uses),
                &labels_json(&token.labels),
                &token.created_by,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = self
            .query(
                "SELECT id, created_at, expires_at, uses_left, uses_total, labels, revoked, created_by
                 FROM tokens ORDER BY created_at",
                &[],
            )
            .await?;
        map_rows(rows, rows::token)
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let changed = self
            .execute("UPDATE tokens SET revoked = true WHERE id = $1", &[&id])
            .await?;
        Ok(changed > 0)
    }

    async fn check_token(&self, token_hash: [u8; 32], now_ms: i64) -> StoreResult<()> {
        let client = self.client().await?;
        let token = client
            .query_opt(
                "SELECT expires_at, uses_left, revoked FROM tokens WHERE hash = $1",
                &[&token_hash.as_slice()],
            )
            .await
            .map_err(map_err)?;
        let Some(token) = token else {
            return Err(StoreError::TokenUnknown);
        };
        rows::token_state(&token).map_err(map_err)?.usable(now_ms)
    }

    async fn enroll_agent(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
        agent: NewAgent,
    ) -> StoreResult<BTreeMap<String, String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // FOR UPDATE: concurrent enrollments with one token queue here, so
        // its uses are never over-spent.
        let token = tx
            .query_opt(
                "SELECT id, expires_at, uses_left, revoked, labels FROM tokens WHERE hash = $1 FOR UPDATE",
                &[&token_hash.as_slice()],
            )
            .await
            .map_err(map_err)?;
        let Some(token) = token else {
            return Err(StoreError::TokenUnknown);
        };
        let token_id: String = token.try_get(0).map_err(map_err)?;
        let labels = labels_from_json(token.try_get(4).map_err(map_err)?);
        rows::token_state(&token).map_err(map_err)?.usable(now_ms)?;
        tx.execute(
            "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = $1",
            &[&token_id],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO agents (id, hostname, labels, bound_labels, enrolled_at) VALUES ($1, $2, $3, $3, $4)",
            &[&agent.id, &agent.hostname, &labels_json(&labels), &agent.enrolled_at_ms],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO certificates (serial, agent_id, not_after) VALUES ($1, $2, $3)",
            &[&agent.cert_serial, &agent.id, &agent.cert_not_after_ms],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(labels)
    }

    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()> {
        self.execute(
            "INSERT INTO certificates (serial, agent_id, not_after) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING",
            &[&serial, &agent_id, &not_after_ms],
        )
        .await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE agents SET revoked_at = coalesce(revoked_at, $2), connected = false WHERE id = $1",
                &[&id, &at_ms],
            )
            .await
            .map_err(map_err)?;
        tx.execute("UPDATE certificates SET revoked = true WHERE agent_id = $1", &[&id])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(changed > 0)
    }

    async fn revoked(&self) -> StoreResult<RevokedSets> {
        let client = self.client().await?;
        let agents = client
            .query("SELECT id FROM agents WHERE revoked_at IS NOT NULL", &[])
            .await
            .map_err(map_err)?;
        let serials = client
            .query(
                "SELECT serial FROM certificates WHERE revoked
                 UNION SELECT serial FROM admin_certificates WHERE revoked_at IS NOT NULL",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(RevokedSets {
            agent_ids: map_rows(agents, |row| row.try_get(0))?,
            serials: map_rows(serials, |row| row.try_get(0))?,
        })
    }
}
