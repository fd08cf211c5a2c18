//! The PostgreSQL store's FleetStore: the fleet: agents, their latest checks, report metadata.

use super::*;

#[async_trait]
impl FleetStore for PgStore {
    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>> {
        let rows = self
            .query(&format!("SELECT * FROM agents ORDER BY hostname {C}, id {C}"), &[])
            .await?;
        map_rows(rows, rows::agent)
    }

    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT * FROM agents WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::agent).transpose().map_err(map_err)
    }

    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT r.body, a.checks_at FROM agents a
                 JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.id = $1",
                &[&id],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok((Vec::new(), 0));
        };
        let body: Vec<u8> = row.try_get(0).map_err(map_err)?;
        let observed: i64 = row.try_get(1).map_err(map_err)?;
        Ok((crate::store::checks_of_report(&body), observed))
    }

    async fn latest_checks_of(
        &self,
        ids: Vec<String>,
    ) -> StoreResult<std::collections::HashMap<String, Vec<proto::CheckResult>>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::store::traits::LATEST_CHECKS_CHUNK) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let rows = self
                .query(
                    "SELECT a.id, r.body FROM agents a
                     JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.id = ANY($1)",
                    &[&chunk],
                )
                .await?;
            for row in rows {
                let id: String = row.try_get(0).map_err(map_err)?;
                let body: Vec<u8> = row.try_get(1).map_err(map_err)?;
                found.insert(id, crate::store::checks_of_report(&body));
            }
        }
        Ok(found)
    }

    async fn reports_meta(&self, kind: i32, since_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        let rows = self
            .query(
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports
                 WHERE kind = $1 AND observed_at >= $2 ORDER BY observed_at",
                &[&i64::from(kind), &since_ms],
            )
            .await?;
        map_rows(rows, |row| {
            let mut meta = rows::report_meta(row)?;
            meta.update_now_refused = crate::store::update_now_refused(&row.try_get::<_, Vec<u8>>(7)?);
            Ok(meta)
        })
    }

    async fn reports_received(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        let rows = self
            .query(
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version FROM reports
                 WHERE received_at >= $1 AND received_at <= $2 ORDER BY received_at, agent_id, seq",
                &[&from_ms, &to_ms],
            )
            .await?;
        map_rows(rows, rows::report_meta)
    }

    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64> {
        let rows = match agent_id {
            Some(id) => {
                self.query("SELECT count(*) FROM reports WHERE agent_id = $1", &[&id])
                    .await?
            }
            None => self.query("SELECT count(*) FROM reports", &[]).await?,
        };
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(map_err)?,
            None => 0,
        };
        Ok(u64_of(count))
    }
}
