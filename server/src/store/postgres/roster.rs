//! PostgreSQL side of the roster ([`crate::store::roster`]), as the SQLite
//! one: each batch one statement (`unnest` over column arrays) in its own
//! transaction, then one small one makes the generation current.

use super::{PgStore, map_err, map_rows};
use crate::store::roster::{BATCH, RosterEntry, RosterStatusRow, join, split};
use crate::store::{RosterStore, StoreResult};

/// The columns of one batch, as arrays.
#[derive(Default)]
struct Columns {
    idx: Vec<i64>,
    host_name: Vec<String>,
    entity_id: Vec<String>,
    ip_addresses: Vec<String>,
    mac_addresses: Vec<String>,
    version: Vec<Option<String>>,
    connection_status: Vec<Option<String>>,
    managing_server: Vec<Option<String>>,
    domain: Vec<Option<String>>,
    folder_path: Vec<Option<String>>,
    os: Vec<Option<String>>,
    product: Vec<Option<String>>,
}

impl Columns {
    fn of(first: usize, batch: &[RosterEntry]) -> Self {
        let mut columns = Columns::default();
        for (offset, entry) in batch.iter().enumerate() {
            columns.idx.push(i64::try_from(first + offset).unwrap_or(i64::MAX));
            columns.host_name.push(entry.host_name.clone());
            columns.entity_id.push(entry.entity_id.clone());
            columns.ip_addresses.push(join(&entry.ip_addresses));
            columns.mac_addresses.push(join(&entry.mac_addresses));
            columns.version.push(entry.version.clone());
            columns.connection_status.push(entry.connection_status.clone());
            columns.managing_server.push(entry.managing_server.clone());
            columns.domain.push(entry.domain.clone());
            columns.folder_path.push(entry.folder_path.clone());
            columns.os.push(entry.os.clone());
            columns.product.push(entry.product.clone());
        }
        columns
    }
}

#[async_trait::async_trait]
impl RosterStore for PgStore {
    async fn replace_roster(&self, source: &str, entries: Vec<RosterEntry>, at_ms: i64) -> StoreResult<()> {
        // Two replicas refreshing at once each get their own generation.
        let row = self
            .query(
                "UPDATE roster_state SET next_generation = next_generation + 1 WHERE id = 1
                 RETURNING next_generation - 1",
                &[],
            )
            .await?;
        let generation: i64 = row
            .first()
            .ok_or_else(|| crate::store::StoreError::Other("the roster_state row is missing".into()))?
            .try_get(0)
            .map_err(map_err)?;
        for (chunk, batch) in entries.chunks(BATCH).enumerate() {
            let columns = Columns::of(chunk * BATCH, batch);
            self.execute(
                "INSERT INTO roster_entries (generation, idx, host_name, entity_id, ip_addresses, mac_addresses,
                     version, connection_status, managing_server, domain, folder_path, os, product)
                 SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])",
                &[
                    &generation,
                    &columns.idx,
                    &columns.host_name,
                    &columns.entity_id,
                    &columns.ip_addresses,
                    &columns.mac_addresses,
                    &columns.version,
                    &columns.connection_status,
                    &columns.managing_server,
                    &columns.domain,
                    &columns.folder_path,
                    &columns.os,
                    &columns.product,
                ],
            )
            .await?;
        }
        let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        self.execute(
            "UPDATE roster_state SET generation = $1, source = $2, entries = $3, refreshed_at = $4,
                 last_error = NULL, last_error_at = NULL WHERE id = 1",
            &[&generation, &source, &count, &at_ms],
        )
        .await?;
        let limit = i64::try_from(BATCH).unwrap_or(i64::MAX);
        while self
            .execute(
                "DELETE FROM roster_entries WHERE ctid IN
                     (SELECT ctid FROM roster_entries WHERE generation < $1 LIMIT $2)",
                &[&generation, &limit],
            )
            .await?
            > 0
        {}
        Ok(())
    }

    async fn record_roster_error(&self, error: &str, at_ms: i64) -> StoreResult<()> {
        self.execute(
            "UPDATE roster_state SET last_error = $1, last_error_at = $2 WHERE id = 1",
            &[&error, &at_ms],
        )
        .await?;
        Ok(())
    }

    async fn roster_status(&self) -> StoreResult<RosterStatusRow> {
        let rows = self
            .query(
                "SELECT source, entries, refreshed_at, last_error, last_error_at, generation FROM roster_state WHERE id = 1",
                &[],
            )
            .await?;
        let mut status = map_rows(rows, |row| {
            Ok(RosterStatusRow {
                source: row.try_get(0)?,
                entries: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
                refreshed_at_ms: row.try_get(2)?,
                last_error: row.try_get(3)?,
                last_error_at_ms: row.try_get(4)?,
                generation: row.try_get(5)?,
            })
        })?;
        Ok(status.pop().unwrap_or_default())
    }

    async fn roster_entries(&self) -> StoreResult<Vec<RosterEntry>> {
        let rows = self
            .query(
                "SELECT host_name, entity_id, ip_addresses, mac_addresses, version, connection_status,
                     managing_server, domain, folder_path, os, product
                 FROM roster_entries
                 WHERE generation = (SELECT generation FROM roster_state WHERE id = 1)
                 ORDER BY idx",
                &[],
            )
            .await?;
        map_rows(rows, |row| {
            Ok(RosterEntry {
                host_name: row.try_get(0)?,
                entity_id: row.try_get(1)?,
                ip_addresses: split(row.try_get::<_, &str>(2)?),
                mac_addresses: split(row.try_get::<_, &str>(3)?),
                version: row.try_get(4)?,
                connection_status: row.try_get(5)?,
                managing_server: row.try_get(6)?,
                domain: row.try_get(7)?,
                folder_path: row.try_get(8)?,
                os: row.try_get(9)?,
                product: row.try_get(10)?,
            })
        })
    }
}
