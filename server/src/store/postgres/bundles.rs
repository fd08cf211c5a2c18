//! PostgreSQL side of the log bundles ([`crate::store::bundles`]), as the
//! SQLite one.

use rollcall_common::receipt::Receipt;

use super::{PgStore, map_err, map_rows};
use crate::store::bundles::{BundleRow, ChunkRecord, appended, refusal};
use crate::store::{BundleStore, StoreResult};

#[async_trait::async_trait]
impl BundleStore for PgStore {
    async fn put_bundle_chunk(&self, chunk: ChunkRecord) -> StoreResult<Result<BundleRow, String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // FOR UPDATE: two replicas can never append to one bundle at once
        // (an agent holds one stream, but a reconnect may overlap).
        let command = tx
            .query_opt(
                "SELECT kind, agent_id FROM commands WHERE id = $1 FOR UPDATE",
                &[&chunk.command_id],
            )
            .await
            .map_err(map_err)?;
        let command: Option<(i32, String)> = match command {
            Some(row) => Some((
                i32::try_from(row.try_get::<_, i64>(0).map_err(map_err)?).unwrap_or(-1),
                row.try_get(1).map_err(map_err)?,
            )),
            None => None,
        };
        let so_far = match tx
            .query_opt("SELECT * FROM bundles WHERE command_id = $1", &[&chunk.command_id])
            .await
            .map_err(map_err)?
        {
            Some(row) => Some(crate::store::rows::bundle(&row).map_err(map_err)?),
            None => None,
        };
        if let Some(reason) = refusal(
            &chunk,
            command.as_ref().map(|(kind, agent)| (*kind, agent.as_str())),
            so_far.as_ref(),
        ) {
            return Ok(Err(reason));
        }
        let row = appended(&chunk, so_far);
        tx.execute(
            "INSERT INTO bundle_chunks (command_id, idx, data) VALUES ($1, $2, $3)",
            &[&chunk.command_id, &i64::from(chunk.index), &chunk.data],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO bundles (command_id, agent_id, started_at, completed_at, chunks, bytes, files, skipped)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (command_id) DO UPDATE SET completed_at = excluded.completed_at, chunks = excluded.chunks,
                 bytes = excluded.bytes, files = excluded.files, skipped = excluded.skipped",
            &[
                &row.command_id,
                &row.agent_id,
                &row.started_at_ms,
                &row.completed_at_ms,
                &i64::from(row.chunks),
                &i64::try_from(row.bytes).unwrap_or(i64::MAX),
                &i64::from(row.files),
                &i64::from(row.skipped),
            ],
        )
        .await
        .map_err(map_err)?;
        if chunk.last {
            // The last chunk is the agent's acceptance (both receipt columns).
            let accepted = Receipt::Accepted;
            tx.execute(
                "UPDATE commands SET answered_at = $2, receipt = $3, refused = $4 WHERE id = $1",
                &[
                    &chunk.command_id,
                    &chunk.at_ms,
                    &accepted.storage(),
                    &accepted.is_refused(),
                ],
            )
            .await
            .map_err(map_err)?;
            // Only the newest bundle of an agent is kept.
            tx.execute(
                "DELETE FROM bundle_chunks WHERE command_id IN
                    (SELECT command_id FROM bundles WHERE agent_id = $1 AND command_id <> $2 AND started_at <= $3)",
                &[&row.agent_id, &row.command_id, &row.started_at_ms],
            )
            .await
            .map_err(map_err)?;
            tx.execute(
                "DELETE FROM bundles WHERE agent_id = $1 AND command_id <> $2 AND started_at <= $3",
                &[&row.agent_id, &row.command_id, &row.started_at_ms],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(row))
    }

    async fn list_bundles(&self) -> StoreResult<Vec<BundleRow>> {
        let rows = self
            .query("SELECT * FROM bundles ORDER BY started_at, command_id", &[])
            .await?;
        map_rows(rows, crate::store::rows::bundle)
    }

    async fn bundle_data(&self, command_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let complete = self
            .query(
                "SELECT completed_at FROM bundles WHERE command_id = $1 AND completed_at IS NOT NULL",
                &[&command_id],
            )
            .await?;
        if complete.is_empty() {
            return Ok(None);
        }
        let rows = self
            .query(
                "SELECT data FROM bundle_chunks WHERE command_id = $1 ORDER BY idx",
                &[&command_id],
            )
            .await?;
        let chunks = map_rows(rows, |row| row.try_get::<_, Vec<u8>>(0))?;
        Ok(Some(chunks.concat()))
    }
}
