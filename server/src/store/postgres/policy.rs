//! The PostgreSQL store's PolicyStore: the fleet policy, versioned.

use super::*;

#[async_trait]
impl PolicyStore for PgStore {
    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Two replicas applying at once get consecutive versions, not a conflict.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_LOCK])
            .await
            .map_err(map_err)?;
        let next: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) + 1 FROM policies", &[])
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?;
        tx.execute(
            "INSERT INTO policies (version, toml, applied_at, applied_by) VALUES ($1, $2, $3, $4)",
            &[&next, &toml, &at_ms, &applied_by],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(u64_of(next))
    }

    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT version, toml, applied_at, applied_by FROM policies ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(map_err)?;
        row.map(|row| rows::policy(&row)).transpose().map_err(map_err)
    }
}
