//! SQLite side of the log bundles ([`crate::store::bundles`]).

use rollcall_common::receipt::Receipt;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, map_err, query_all};
use crate::store::bundles::{BundleRow, ChunkRecord, appended, refusal};
use crate::store::{BundleStore, StoreResult};

fn put_chunk(conn: &mut Connection, chunk: &ChunkRecord) -> StoreResult<Result<BundleRow, String>> {
    let tx = conn.transaction().map_err(map_err)?;
    let command: Option<(i32, String)> = tx
        .query_row(
            "SELECT kind, agent_id FROM commands WHERE id = ?1",
            [&chunk.command_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(map_err)?;
    let so_far = tx
        .query_row(
            "SELECT * FROM bundles WHERE command_id = ?1",
            [&chunk.command_id],
            |row| crate::store::rows::bundle(row),
        )
        .optional()
        .map_err(map_err)?;
    if let Some(reason) = refusal(
        chunk,
        command.as_ref().map(|(kind, agent)| (*kind, agent.as_str())),
        so_far.as_ref(),
    ) {
        return Ok(Err(reason));
    }
    let row = appended(chunk, so_far);
    tx.execute(
        "INSERT INTO bundle_chunks (command_id, idx, data) VALUES (?1, ?2, ?3)",
        params![chunk.command_id, chunk.index, chunk.data],
    )
    .map_err(map_err)?;
    tx.execute(
        "INSERT INTO bundles (command_id, agent_id, started_at, completed_at, chunks, bytes, files, skipped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (command_id) DO UPDATE SET completed_at = excluded.completed_at, chunks = excluded.chunks,
             bytes = excluded.bytes, files = excluded.files, skipped = excluded.skipped",
        params![
            row.command_id,
            row.agent_id,
            row.started_at_ms,
            row.completed_at_ms,
            row.chunks,
            i64::try_from(row.bytes).unwrap_or(i64::MAX),
            row.files,
            row.skipped
        ],
    )
    .map_err(map_err)?;
    if chunk.last {
        // The last chunk is the agent's acceptance (both receipt columns).
        let accepted = Receipt::Accepted;
        tx.execute(
            "UPDATE commands SET answered_at = ?2, receipt = ?3, refused = ?4 WHERE id = ?1",
            params![chunk.command_id, chunk.at_ms, accepted.storage(), accepted.is_refused()],
        )
        .map_err(map_err)?;
        // Only the newest bundle of an agent is kept.
        tx.execute(
            "DELETE FROM bundle_chunks WHERE command_id IN
                (SELECT command_id FROM bundles WHERE agent_id = ?1 AND command_id != ?2 AND started_at <= ?3)",
            params![row.agent_id, row.command_id, row.started_at_ms],
        )
        .map_err(map_err)?;
        tx.execute(
            "DELETE FROM bundles WHERE agent_id = ?1 AND command_id != ?2 AND started_at <= ?3",
            params![row.agent_id, row.command_id, row.started_at_ms],
        )
        .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    Ok(Ok(row))
}

#[async_trait::async_trait]
impl BundleStore for SqliteStore {
    async fn put_bundle_chunk(&self, chunk: ChunkRecord) -> StoreResult<Result<BundleRow, String>> {
        self.write(move |conn| put_chunk(conn, &chunk)).await
    }

    async fn list_bundles(&self) -> StoreResult<Vec<BundleRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT * FROM bundles ORDER BY started_at, command_id",
                [],
                |row| crate::store::rows::bundle(row),
            )
        })
        .await
    }

    async fn bundle_data(&self, command_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let command_id = command_id.to_string();
        self.read(move |conn| {
            let complete: Option<Option<i64>> = conn
                .query_row(
                    "SELECT completed_at FROM bundles WHERE command_id = ?1",
                    [&command_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(map_err)?;
            if !matches!(complete, Some(Some(_))) {
                return Ok(None);
            }
            let chunks = query_all(
                conn,
                "SELECT data FROM bundle_chunks WHERE command_id = ?1 ORDER BY idx",
                [&command_id],
                |row| row.get::<_, Vec<u8>>(0),
            )?;
            Ok(Some(chunks.concat()))
        })
        .await
    }
}
