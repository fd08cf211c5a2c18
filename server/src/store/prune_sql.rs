//! The statements of [`super::RetentionStore::prune`], one per table and
//! store: `$1` is the cutoff (ms), `$2` the batch size. Each deletes the
//! rows a bounded subquery picks, so one statement never holds the writer
//! for more than a batch; the indexes of schema version 13 (SQLite) / 14
//! (PostgreSQL) let the subquery find old rows without a scan.
//!
//! A rollout not cancelled is open: its commands and transitions stay,
//! whatever their age (the support report and `rollcall agent` read them).

use super::PruneTable;

/// SQLite (which reads `$1` as a positional parameter too).
pub(crate) fn sqlite(table: PruneTable) -> &'static str {
    match table {
        PruneTable::Audit => {
            "DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit WHERE at < $1 ORDER BY at LIMIT $2)"
        }
        PruneTable::Commands => {
            "DELETE FROM commands WHERE id IN (SELECT c.id FROM commands c
                WHERE c.created_at < $1 AND c.expires_at < $1
                  AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = c.rollout_id AND r.cancelled_at IS NULL)
                  AND NOT EXISTS (SELECT 1 FROM bundles b WHERE b.command_id = c.id)
                ORDER BY c.created_at LIMIT $2)"
        }
        PruneTable::Transitions => {
            "DELETE FROM transitions WHERE rowid IN (SELECT t.rowid FROM transitions t
                WHERE t.at < $1
                  AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = t.rollout_id AND r.cancelled_at IS NULL)
                ORDER BY t.at LIMIT $2)"
        }
        PruneTable::Certificates => {
            "DELETE FROM certificates WHERE serial IN
                (SELECT serial FROM certificates WHERE not_after < $1 ORDER BY not_after LIMIT $2)"
        }
        PruneTable::AdminCertificates => {
            "DELETE FROM admin_certificates WHERE serial IN
                (SELECT serial FROM admin_certificates WHERE not_after < $1 ORDER BY not_after LIMIT $2)"
        }
    }
}

/// PostgreSQL.
pub(crate) fn postgres(table: PruneTable) -> &'static str {
    match table {
        PruneTable::Audit => "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)",
        PruneTable::Commands => {
            "DELETE FROM commands WHERE id IN (SELECT c.id FROM commands c
                WHERE c.created_at < $1 AND c.expires_at < $1
                  AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = c.rollout_id AND r.cancelled_at IS NULL)
                  AND NOT EXISTS (SELECT 1 FROM bundles b WHERE b.command_id = c.id)
                ORDER BY c.created_at LIMIT $2)"
        }
        PruneTable::Transitions => {
            "DELETE FROM transitions WHERE id IN (SELECT t.id FROM transitions t
                WHERE t.at < $1
                  AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = t.rollout_id AND r.cancelled_at IS NULL)
                ORDER BY t.at LIMIT $2)"
        }
        PruneTable::Certificates => {
            "DELETE FROM certificates WHERE serial IN
                (SELECT serial FROM certificates WHERE not_after < $1 ORDER BY not_after LIMIT $2)"
        }
        PruneTable::AdminCertificates => {
            "DELETE FROM admin_certificates WHERE serial IN
                (SELECT serial FROM admin_certificates WHERE not_after < $1 ORDER BY not_after LIMIT $2)"
        }
    }
}
