//! The PostgreSQL store's AuditStore: the audit log and the admin certificates.

use super::*;

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, row: AuditRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO audit (at, actor, role, action, target, result) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&row.at_ms, &row.actor, &row.role, &row.action, &row.target, &row.result],
        )
        .await?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let rows = self
            .query(
                "SELECT at, actor, role, action, target, result FROM audit ORDER BY at DESC, id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
            .await?;
        let mut rows = map_rows(rows, rows::audit)?;
        rows.reverse();
        Ok(rows)
    }

    async fn record_admin_certificate(&self, row: AdminCertRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO admin_certificates (serial, name, role, issued_at, not_after, issued_by, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (serial) DO UPDATE SET name = excluded.name, role = excluded.role,
                issued_at = excluded.issued_at, not_after = excluded.not_after, issued_by = excluded.issued_by,
                revoked_at = excluded.revoked_at",
            &[
                &row.serial,
                &row.name,
                &row.role,
                &row.issued_at_ms,
                &row.not_after_ms,
                &row.issued_by,
                &row.revoked_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_admin_certificates(&self) -> StoreResult<Vec<AdminCertRow>> {
        let rows = self
            .query(
                &format!(
                    "SELECT serial, name, role, issued_at, not_after, issued_by, revoked_at FROM admin_certificates
                     ORDER BY name {C}, issued_at"
                ),
                &[],
            )
            .await?;
        map_rows(rows, rows::admin_certificate)
    }

    async fn revoke_admin_certificates(&self, name: &str, at_ms: i64) -> StoreResult<Vec<String>> {
        let rows = self
            .query(
                "UPDATE admin_certificates SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL RETURNING serial",
                &[&name, &at_ms],
            )
            .await?;
        map_rows(rows, |row| row.try_get(0))
    }
}
