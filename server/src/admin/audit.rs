//! The audit log: every state-changing admin call — who, what, when, and
//! the result (including calls refused for the caller's role). Writing the
//! entry never fails the call it records; a store error is logged.

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
    let row = AuditRow {
        at_ms: now_ms(),
        actor: caller.name.clone(),
        role: caller.role.to_string(),
        action: action.to_string(),
        target: target.chars().take(MAX_TARGET).collect(),
        result,
    };
    if let Err(error) = coordinator.store.append_audit(row).await {
        tracing::error!(%error, action, actor = caller.name, "could not write the audit log");
    }
}
