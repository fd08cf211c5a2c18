//! The SQLite store's AuditStore: the audit log and the admin certificates.

use super::*;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, row: AuditRow) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO audit (at, actor, role, action, target, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.at_ms, row.actor, row.role, row.action, row.target, row.result],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>> {
        self.read(move |conn| {
            let mut rows = query_all(
                conn,
                "SELECT at, actor, role, action, target, result FROM audit ORDER BY at DESC, rowid DESC LIMIT ?1",
                [limit],
                |row| rows::audit(row),
            )?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    async fn record_admin_certificate(&self, row: AdminCertRow) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO admin_certificates (serial, name, role, issued_at, not_after, issued_by, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![row.serial, row.name, row.role, row.issued_at_ms, row.not_after_ms, row.issued_by, row.revoked_at_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_admin_certificates(&self) -> StoreResult<Vec<AdminCertRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT serial, name, role, issued_at, not_after, issued_by, revoked_at FROM admin_certificates ORDER BY name, issued_at",
                [],
                |row| rows::admin_certificate(row),
            )
        })
        .await
    }

    async fn revoke_admin_certificates(&self, name: &str, at_ms: i64) -> StoreResult<Vec<String>> {
        let name = name.to_string();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let serials = query_all(
                &tx,
                "SELECT serial FROM admin_certificates WHERE name = ?1 AND revoked_at IS NULL",
                [&name],
                |row| row.get::<_, String>(0),
            )?;
            tx.execute(
                "UPDATE admin_certificates SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, at_ms],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(serials)
        })
        .await
    }
}
