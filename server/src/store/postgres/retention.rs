//! The PostgreSQL store's RetentionStore: retention: old reports deleted in batches; the store size.

use super::*;

#[async_trait]
impl RetentionStore for PgStore {
    async fn delete_old_reports(
        &self,
        before_ms: i64,
        keep: RetentionKeep,
        cursor: i64,
        limit: u32,
    ) -> StoreResult<RetentionBatch> {
        let update_now_since = keep.update_now_since_ms.unwrap_or(i64::MAX);
        let update_now_kind = proto::ReportKind::UpdateNowAgent as i64;
        let limit = i64::from(limit);
        // One statement, one transaction: the batch is the next `limit`
        // reports by receive time from the cursor (index reports_received).
        let rows = self
            .query(
                "WITH batch AS (
                    SELECT agent_id, seq, received_at FROM reports
                    WHERE received_at >= $1 AND received_at < $2
                    ORDER BY received_at LIMIT $3
                ), gone AS (
                    DELETE FROM reports r USING batch b
                    WHERE r.agent_id = b.agent_id AND r.seq = b.seq
                      AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = r.agent_id
                          AND (a.last_seq = r.seq OR a.checks_seq = r.seq))
                      AND NOT (r.kind = $4 AND r.observed_at >= $5)
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM batch),
                       (SELECT max(received_at) FROM batch)",
                &[&cursor, &before_ms, &limit, &update_now_kind, &update_now_since],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Other("retention batch returned no row".into()))?;
        let deleted: i64 = row.try_get(0).map_err(map_err)?;
        let seen: i64 = row.try_get(1).map_err(map_err)?;
        let newest: Option<i64> = row.try_get(2).map_err(map_err)?;
        // A short batch reached the cutoff. Otherwise go on from the newest
        // receive time seen (rows sharing it may be left); when a whole
        // batch shared the cursor's millisecond (all kept), step past it.
        let next = match newest {
            Some(newest) if seen >= limit => Some(if newest > cursor { newest } else { cursor + 1 }),
            _ => None,
        };
        Ok(RetentionBatch {
            deleted: u64::try_from(deleted).unwrap_or(0),
            next,
        })
    }

    async fn store_bytes(&self) -> StoreResult<u64> {
        let rows = self
            .query(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
            )
            .await?;
        let bytes: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(map_err)?,
            None => 0,
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}
