//! The SQLite store's RetentionStore: retention: old reports deleted in batches; the store size.

use super::*;

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn delete_old_reports(
        &self,
        before_ms: i64,
        keep: RetentionKeep,
        cursor: i64,
        limit: u32,
    ) -> StoreResult<RetentionBatch> {
        let update_now_since = keep.update_now_since_ms.unwrap_or(i64::MAX);
        let update_now_kind = proto::ReportKind::UpdateNowAgent as i64;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            // The batch: the next `limit` reports by id, which is arrival order.
            let (last_id, newest): (Option<i64>, Option<i64>) = tx
                .query_row(
                    "SELECT max(id), max(received_at) FROM
                        (SELECT id, received_at FROM reports WHERE id > ?1 ORDER BY id LIMIT ?2)",
                    params![cursor, limit],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(map_err)?;
            let Some(last_id) = last_id else {
                return Ok(RetentionBatch { deleted: 0, next: None });
            };
            let deleted = tx
                .execute(
                    "DELETE FROM reports WHERE id > ?1 AND id <= ?2 AND received_at < ?3
                        AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = reports.agent_id
                            AND (a.last_seq = reports.seq OR a.checks_report = reports.id))
                        AND NOT (kind = ?4 AND observed_at >= ?5)",
                    params![cursor, last_id, before_ms, update_now_kind, update_now_since],
                )
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            // Ids follow arrival: once a batch reaches reports received after
            // the cutoff, the rest of the table is newer still.
            let next = newest.is_some_and(|newest| newest < before_ms).then_some(last_id);
            Ok(RetentionBatch {
                deleted: deleted as u64,
                next,
            })
        })
        .await
    }

    async fn store_bytes(&self) -> StoreResult<u64> {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let wal_bytes = std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0);
        let file_bytes = self
            .read(|conn| {
                conn.query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(map_err)
            })
            .await?;
        Ok(u64::try_from(file_bytes).unwrap_or(0) + wal_bytes)
    }
}
