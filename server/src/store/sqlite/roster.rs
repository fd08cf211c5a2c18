//! SQLite side of the roster ([`crate::store::roster`]): batches under a
//! new generation, each its own write job, so reports queued for the
//! writer get it between two batches.

use rusqlite::{Connection, params};

use super::{SqliteStore, map_err, query_all};
use crate::store::roster::{BATCH, RosterEntry, RosterStatusRow, join, split};
use crate::store::{RosterStore, StoreResult};

fn allocate_generation(conn: &mut Connection) -> StoreResult<i64> {
    let tx = conn.transaction().map_err(map_err)?;
    let generation: i64 = tx
        .query_row("SELECT next_generation FROM roster_state WHERE id = 1", [], |row| {
            row.get(0)
        })
        .map_err(map_err)?;
    tx.execute(
        "UPDATE roster_state SET next_generation = ?1 WHERE id = 1",
        [generation + 1],
    )
    .map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(generation)
}

fn insert_batch(conn: &mut Connection, generation: i64, first: usize, batch: &[RosterEntry]) -> StoreResult<()> {
    let tx = conn.transaction().map_err(map_err)?;
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO roster_entries (generation, idx, host_name, entity_id, ip_addresses, mac_addresses,
                     version, connection_status, managing_server, domain, folder_path, os, product)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .map_err(map_err)?;
        for (offset, entry) in batch.iter().enumerate() {
            let idx = i64::try_from(first + offset).unwrap_or(i64::MAX);
            insert
                .execute(params![
                    generation,
                    idx,
                    entry.host_name,
                    entry.entity_id,
                    join(&entry.ip_addresses),
                    join(&entry.mac_addresses),
                    entry.version,
                    entry.connection_status,
                    entry.managing_server,
                    entry.domain,
                    entry.folder_path,
                    entry.os,
                    entry.product,
                ])
                .map_err(map_err)?;
        }
    }
    tx.commit().map_err(map_err)
}

fn make_current(conn: &mut Connection, generation: i64, source: &str, entries: usize, at_ms: i64) -> StoreResult<()> {
    conn.execute(
        "UPDATE roster_state SET generation = ?1, source = ?2, entries = ?3, refreshed_at = ?4,
             last_error = NULL, last_error_at = NULL WHERE id = 1",
        params![generation, source, i64::try_from(entries).unwrap_or(i64::MAX), at_ms],
    )
    .map_err(map_err)?;
    Ok(())
}

/// Deletes one batch of rows older than `generation`; the number deleted.
fn prune_batch(conn: &mut Connection, generation: i64) -> StoreResult<usize> {
    conn.execute(
        "DELETE FROM roster_entries WHERE rowid IN
             (SELECT rowid FROM roster_entries WHERE generation < ?1 LIMIT ?2)",
        params![generation, i64::try_from(BATCH).unwrap_or(i64::MAX)],
    )
    .map_err(map_err)
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<RosterEntry> {
    Ok(RosterEntry {
        host_name: row.get(0)?,
        entity_id: row.get(1)?,
        ip_addresses: split(&row.get::<_, String>(2)?),
        mac_addresses: split(&row.get::<_, String>(3)?),
        version: row.get(4)?,
        connection_status: row.get(5)?,
        managing_server: row.get(6)?,
        domain: row.get(7)?,
        folder_path: row.get(8)?,
        os: row.get(9)?,
        product: row.get(10)?,
    })
}

#[async_trait::async_trait]
impl RosterStore for SqliteStore {
    async fn replace_roster(&self, source: &str, entries: Vec<RosterEntry>, at_ms: i64) -> StoreResult<()> {
        let generation = self.write(allocate_generation).await?;
        let count = entries.len();
        let entries = std::sync::Arc::new(entries);
        for first in (0..count).step_by(BATCH) {
            let entries = entries.clone();
            self.write(move |conn| {
                let end = (first + BATCH).min(entries.len());
                insert_batch(conn, generation, first, entries.get(first..end).unwrap_or_default())
            })
            .await?;
        }
        let source = source.to_string();
        self.write(move |conn| make_current(conn, generation, &source, count, at_ms))
            .await?;
        while self.write(move |conn| prune_batch(conn, generation)).await? > 0 {}
        Ok(())
    }

    async fn record_roster_error(&self, error: &str, at_ms: i64) -> StoreResult<()> {
        let error = error.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE roster_state SET last_error = ?1, last_error_at = ?2 WHERE id = 1",
                params![error, at_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn roster_status(&self) -> StoreResult<RosterStatusRow> {
        self.read(|conn| {
            conn.query_row(
                "SELECT source, entries, refreshed_at, last_error, last_error_at, generation FROM roster_state WHERE id = 1",
                [],
                |row| {
                    Ok(RosterStatusRow {
                        source: row.get(0)?,
                        entries: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                        refreshed_at_ms: row.get(2)?,
                        last_error: row.get(3)?,
                        last_error_at_ms: row.get(4)?,
                        generation: row.get(5)?,
                    })
                },
            )
            .map_err(map_err)
        })
        .await
    }

    async fn roster_entries(&self) -> StoreResult<Vec<RosterEntry>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT host_name, entity_id, ip_addresses, mac_addresses, version, connection_status,
                     managing_server, domain, folder_path, os, product
                 FROM roster_entries
                 WHERE generation = (SELECT generation FROM roster_state WHERE id = 1)
                 ORDER BY idx",
                [],
                entry,
            )
        })
        .await
    }
}
