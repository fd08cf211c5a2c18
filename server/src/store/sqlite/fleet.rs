//! The SQLite store's FleetStore: the fleet: agents, their latest checks, report metadata.

use super::*;

#[async_trait]
impl FleetStore for SqliteStore {
    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare("SELECT * FROM agents ORDER BY hostname, id")
                .map_err(map_err)?;
            let rows = statement.query_map([], |row| rows::agent(row)).map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT * FROM agents WHERE id = ?1", [id], |row| rows::agent(row))
                .optional()
                .map_err(map_err)
        })
        .await
    }

    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)> {
        let id = id.to_string();
        self.read(move |conn| {
            let found: Option<(Vec<u8>, i64)> = conn
                .query_row(
                    "SELECT r.body, a.checks_at FROM agents a JOIN reports r ON r.id = a.checks_report WHERE a.id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            Ok(found
                .map(|(body, observed)| (crate::store::checks_of_report(&body), observed))
                .unwrap_or_default())
        })
        .await
    }

    async fn latest_checks_of(
        &self,
        ids: Vec<String>,
    ) -> StoreResult<std::collections::HashMap<String, Vec<proto::CheckResult>>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::store::traits::LATEST_CHECKS_CHUNK) {
            // The ids travel as one JSON array: one query, whatever their count.
            let list = serde_json::to_string(chunk).map_err(|error| StoreError::Other(error.to_string()))?;
            let rows = self
                .read(move |conn| {
                    query_all(
                        conn,
                        "SELECT a.id, r.body FROM agents a JOIN reports r ON r.id = a.checks_report
                         WHERE a.id IN (SELECT value FROM json_each(?1))",
                        [list],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)),
                    )
                })
                .await?;
            found.extend(
                rows.into_iter()
                    .map(|(id, body)| (id, crate::store::checks_of_report(&body))),
            );
        }
        Ok(found)
    }

    async fn reports_meta(&self, kind: i32, since_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports
                 WHERE kind = ?1 AND observed_at >= ?2 ORDER BY observed_at",
                params![kind, since_ms],
                |row| {
                    let mut meta = rows::report_meta(row)?;
                    meta.update_now_refused = crate::store::update_now_refused(&row.get::<_, Vec<u8>>(7)?);
                    Ok(meta)
                },
            )
        })
        .await
    }

    async fn reports_received(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version FROM reports
                 WHERE received_at >= ?1 AND received_at <= ?2 ORDER BY received_at, id",
                params![from_ms, to_ms],
                |row| rows::report_meta(row),
            )
        })
        .await
    }

    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64> {
        let agent_id = agent_id.map(str::to_string);
        self.read(move |conn| {
            let count: i64 = match agent_id {
                Some(id) => conn.query_row("SELECT count(*) FROM reports WHERE agent_id = ?1", [id], |row| {
                    row.get(0)
                }),
                None => conn.query_row("SELECT count(*) FROM reports", [], |row| row.get(0)),
            }
            .map_err(map_err)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}
