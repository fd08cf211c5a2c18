//! The PostgreSQL store's IngestStore: ingest: reports and receipts stored in batches; housekeeping.

use super::*;

#[async_trait]
impl IngestStore for PgStore {
    async fn ingest(&self, batch: Vec<ReportRecord>, receipts: Vec<ReceiptRecord>) -> StoreResult<Vec<Settled>> {
        // A deadlock PostgreSQL broke by aborting this transaction (another
        // replica writing the same agent's rows during a failover) is
        // retried a few times before the batch is refused and re-sent.
        let mut attempt = 1;
        loop {
            match self.ingest_batch(&batch, &receipts).await {
                Err(StoreError::Conflict(reason)) if attempt < INGEST_ATTEMPTS => {
                    tracing::debug!(%reason, attempt, "ingest conflict; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    fn ingest_writers(&self) -> usize {
        INGEST_WRITERS
    }
}
