//! The SQLite store's IngestStore: ingest: reports and receipts stored in batches; housekeeping.

use super::*;

#[async_trait]
impl IngestStore for SqliteStore {
    async fn ingest(&self, batch: Vec<ReportRecord>, receipts: Vec<ReceiptRecord>) -> StoreResult<Vec<Settled>> {
        if batch.is_empty() && receipts.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let mut settled = Vec::new();
            {
                let mut record_receipt = tx
                    .prepare_cached(
                        "UPDATE commands SET receipt = ?3, refused = ?4
                         WHERE id = ?1 AND agent_id = ?2 AND NOT refused
                         RETURNING batch_id, answered_at IS NULL",
                    )
                    .map_err(map_err)?;
                for receipt in &receipts {
                    let updated: Option<(String, bool)> = record_receipt
                        .query_row(
                            params![
                                receipt.command_id,
                                receipt.agent_id,
                                receipt.receipt.storage(),
                                receipt.receipt.is_refused()
                            ],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()
                        .map_err(map_err)?;
                    if let Some((batch_id, true)) = updated
                        && receipt.receipt.is_refused()
                    {
                        settled.push(Settled {
                            batch_id,
                            answer: None,
                            was_refused: false,
                        });
                    }
                }
                // Acknowledgements are cumulative: a seq not above the
                // agent's highest stored one is a re-send (schema 5).
                let mut last_seq = tx
                    .prepare_cached("SELECT last_seq FROM agents WHERE id = ?1")
                    .map_err(map_err)?;
                let mut insert_report = tx
                    .prepare_cached(
                        "INSERT INTO reports (agent_id, seq, kind, observed_at, received_at, command_id, version, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(map_err)?;
                // The agent row holds its newest facts: newest by seq (the
                // check above keeps seqs rising), never by the agent's clock,
                // and points at the report with its newest check run. The
                // dropped count saturates: SQLite turns an integer sum that
                // overflows into a REAL, which no read of the row accepted.
                let mut update_agent = tx
                    .prepare_cached(
                        "UPDATE agents SET last_seq = max(last_seq, ?2), last_seen = max(last_seen, ?3),
                            last_report_at = max(last_report_at, ?4),
                            dropped_reports = CASE WHEN typeof(dropped_reports) <> 'integer'
                                                      OR dropped_reports > 9223372036854775807 - ?5
                                                   THEN 9223372036854775807 ELSE dropped_reports + ?5 END,
                            dead_letters = CASE WHEN typeof(dead_letters) <> 'integer'
                                                   OR dead_letters > 9223372036854775807 - ?11
                                                THEN 9223372036854775807 ELSE dead_letters + ?11 END,
                            product = ?6, host = ?7, version = ?8,
                            checks_report = coalesce(?9, checks_report),
                            checks_at = CASE WHEN ?9 IS NOT NULL THEN ?4 ELSE checks_at END,
                            checks_received_at = CASE WHEN ?9 IS NOT NULL THEN ?3 ELSE checks_received_at END,
                            clock_skew_ms = ?10
                         WHERE id = ?1",
                    )
                    .map_err(map_err)?;
                let mut answer_command = tx
                    .prepare_cached(
                        "UPDATE commands SET answered_at = ?3, answer_version = ?4
                         WHERE id = ?1 AND agent_id = ?2 AND answered_at IS NULL
                         RETURNING batch_id, refused",
                    )
                    .map_err(map_err)?;
                for record in &batch {
                    let report = &record.report;
                    let seq = seq_to_sql(report.seq);
                    let stored: Option<i64> = last_seq
                        .query_row([&record.agent_id], |row| row.get(0))
                        .optional()
                        .map_err(map_err)?;
                    if stored.is_some_and(|stored| seq <= stored) {
                        // Already stored: a re-send after a lost acknowledgement.
                        continue;
                    }
                    let clock = crate::domain::clock_skew::reading(&record.report, record.received_at_ms);
                    insert_report
                        .execute(params![
                            record.agent_id,
                            seq,
                            report.kind,
                            clock.observed_at_ms,
                            record.received_at_ms,
                            report.command_id,
                            report.product.as_ref().map(|p| p.version.as_str()).unwrap_or(""),
                            report.encode_to_vec()
                        ])
                        .map_err(map_err)?;
                    let report_id = (!report.checks.is_empty()).then(|| tx.last_insert_rowid());
                    let product = report.product.clone().unwrap_or_default();
                    if !report.command_id.is_empty() {
                        let answered: Option<(String, bool)> = answer_command
                            .query_row(
                                params![
                                    report.command_id,
                                    record.agent_id,
                                    record.received_at_ms,
                                    product.version
                                ],
                                |row| Ok((row.get(0)?, row.get(1)?)),
                            )
                            .optional()
                            .map_err(map_err)?;
                        if let Some((batch_id, was_refused)) = answered {
                            settled.push(Settled {
                                batch_id,
                                answer: Some(product.version.clone()),
                                was_refused,
                            });
                        }
                    }
                    update_agent
                        .execute(params![
                            record.agent_id,
                            seq,
                            record.received_at_ms,
                            clock.observed_at_ms,
                            seq_to_sql(report.dropped_before),
                            product.encode_to_vec(),
                            report.host.clone().unwrap_or_default().encode_to_vec(),
                            product.version,
                            report_id,
                            clock.skew_ms,
                            seq_to_sql(report.dead_lettered_before)
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(settled)
        })
        .await
    }

    async fn checkpoint(&self) -> StoreResult<()> {
        // PASSIVE: copies what no reader still needs from the WAL into the
        // database file without blocking the writer or readers; the writer
        // then restarts the WAL from its beginning. Done here, once a
        // second, a page rewritten by many batches is copied once, and the
        // commits that acknowledge reports no longer pay for it.
        let checkpointer = self.checkpointer.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = checkpointer
                .lock()
                .map_err(|_| StoreError::Other("store checkpoint lock poisoned".into()))?;
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(open(&path, READER_CACHE_KIB).map_err(map_err)?),
            };
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(map_err)
        })
        .await
        .map_err(|error| StoreError::Other(format!("store task failed: {error}")))?
    }
}
