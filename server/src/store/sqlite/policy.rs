//! The SQLite store's PolicyStore: the fleet policy, versioned.

use super::*;

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64> {
        let (toml, applied_by) = (toml.to_string(), applied_by.to_string());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let next: i64 = tx
                .query_row("SELECT coalesce(max(version), 0) + 1 FROM policies", [], |row| {
                    row.get(0)
                })
                .map_err(map_err)?;
            tx.execute(
                "INSERT INTO policies (version, toml, applied_at, applied_by) VALUES (?1, ?2, ?3, ?4)",
                params![next, toml, at_ms, applied_by],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(u64::try_from(next).unwrap_or(0))
        })
        .await
    }

    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT version, toml, applied_at, applied_by FROM policies ORDER BY version DESC LIMIT 1",
                [],
                |row| rows::policy(row),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }
}
