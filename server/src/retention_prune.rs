//! Retention of the tables other than reports (issue 24, point 8): audit
//! entries, commands, rollout transitions, and agent and admin certificates
//! long expired. Without it one churning agent grows them on every cycle.
//!
//! Runs in the retention task ([`crate::retention::run`]), under its lease,
//! after the report pass: per table, batches of [`BATCH`] rows, one short
//! statement each with a pause between them, so ingest (SQLite's single
//! writer) never waits for more than one batch.
//!
//! Always kept, whatever their age: the commands and transitions of a
//! rollout not cancelled (its support report and history read them), the
//! commands a bundle names, and a certificate's revocation until the
//! certificate has expired and `--retain-expired-certificates` more has
//! passed (an unexpired revoked certificate must stay refused).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::RetentionAges;
use crate::state::Coordinator;
use crate::store::{PruneTable, StoreResult};

/// Rows deleted per statement at most.
pub const BATCH: u32 = 1000;
/// Pause between batches: ingest gets the writer in between.
const PAUSE: Duration = Duration::from_millis(20);

/// How long `table` keeps its rows; `None`: forever.
pub fn age(ages: &RetentionAges, table: PruneTable) -> Option<Duration> {
    match table {
        PruneTable::Audit => ages.audit,
        PruneTable::Commands => ages.commands,
        PruneTable::Transitions => ages.transitions,
        PruneTable::Certificates | PruneTable::AdminCertificates => ages.expired_certificates,
    }
}

/// One pass over every table with a retention age, as of `now_ms` (the
/// clock is the caller's, so a test ages rows without waiting). Returns the
/// rows deleted per table. Stops early at shutdown or when the lease lapsed.
pub async fn pass(
    coordinator: &Coordinator,
    now_ms: i64,
    shutdown: &CancellationToken,
) -> StoreResult<BTreeMap<&'static str, u64>> {
    let mut pruned = BTreeMap::new();
    for table in PruneTable::ALL {
        let Some(retain) = age(&coordinator.config.retain, table) else {
            continue;
        };
        let before_ms = now_ms.saturating_sub(i64::try_from(retain.as_millis()).unwrap_or(i64::MAX));
        loop {
            let deleted = coordinator.store.prune(table, before_ms, BATCH).await?;
            coordinator.metrics.rows_pruned(table.name(), deleted);
            *pruned.entry(table.name()).or_insert(0) += deleted;
            if deleted < u64::from(BATCH) {
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(pruned),
                () = tokio::time::sleep(PAUSE) => {}
            }
            // A long pass keeps its lease; if it lapsed, another replica goes on.
            if !crate::retention_lease::take_lease(coordinator, &coordinator.config.replica_id).await {
                return Ok(pruned);
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    Ok(pruned)
}
