//! The audit log: every admin call — who, what, when, and the result.
//! State-changing calls are each written; reads and refused calls (for the
//! caller's role, a revoked or expired certificate, an agent certificate)
//! are written compactly, at most once a minute per caller and call, with a
//! count of the rest ([`crate::audit_limit`]). Writing the entry never
//! fails the call it records; a store error is logged.

use std::sync::Arc;

use rollcall_common::timefmt::now_ms;
use tonic::Status;

use crate::edge::auth::AdminCaller;
use crate::state::Coordinator;
use crate::store::AuditRow;

/// Largest `target` text kept per entry.
const MAX_TARGET: usize = 1024;

/// The result column: `ok`, `denied: …` or `error: …`.
pub fn outcome<T>(result: &Result<T, Status>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(status) if status.code() == tonic::Code::PermissionDenied => format!("denied: {}", status.message()),
        Err(status) => format!("error: {}", status.message()),
    }
}

pub async fn record(coordinator: &Arc<Coordinator>, caller: &AdminCaller, action: &str, target: &str, result: String) {
    write(
        coordinator,
        &caller.name,
        &caller.role.to_string(),
        action,
        target,
        result,
    )
    .await;
}

/// Writes one entry for `actor` (an admin name, or `agent:ID`) in `role`.
pub async fn write(
    coordinator: &Arc<Coordinator>,
    actor: &str,
    role: &str,
    action: &str,
    target: &str,
    result: String,
) {
    let row = AuditRow {
        at_ms: now_ms(),
        actor: actor.to_string(),
        role: role.to_string(),
        action: action.to_string(),
        target: target.chars().take(MAX_TARGET).collect(),
        result,
    };
    if let Err(error) = coordinator.store.append_audit(row).await {
        tracing::error!(%error, action, actor, "could not write the audit log");
    }
}
