//! The coordinator's durable state, behind one trait so SQLite (embedded,
//! the default) and PostgreSQL (several replicas) behave the same.
//!
//! Invariants every implementation keeps:
//! - a report is stored at most once per (agent, seq);
//! - `ingest` returns only after the batch is durable (committed);
//! - token consumption and agent creation happen in one transaction, so a
//!   token is never over-used under concurrency;
//! - secrets are never stored: tokens as SHA-256 hashes only.
//!
//! Longer than ~400 lines: the row types every store and caller share, one
//! struct each, kept together so a field is added in one place.

pub mod bundles;
mod migrations;
pub mod postgres;
#[cfg(any(test, feature = "test-support"))]
pub mod postgres_scratch;
pub mod postgres_tls;
pub mod roster;
pub mod rows;
pub mod sqlite;
#[cfg(test)]
mod tests;
pub mod traits;

pub use traits::*;

use std::collections::BTreeMap;

use rollcall_common::member_state::MemberState;
use rollcall_common::proto;
use rollcall_common::receipt::Receipt;

/// Errors callers must tell apart.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("enrollment token is unknown")]
    TokenUnknown,
    #[error("enrollment token has expired")]
    TokenExpired,
    #[error("enrollment token is used up")]
    TokenUsedUp,
    #[error("enrollment token was revoked")]
    TokenRevoked,
    #[error("not found: {0}")]
    NotFound(String),
    /// The store cannot take writes (disk full, read-only): callers refuse
    /// the request and health turns NOT_SERVING.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database aborted the transaction to resolve a conflict
    /// (PostgreSQL deadlock or serialization failure): safe to run again.
    #[error("store conflict: {0}")]
    Conflict(String),
    #[error("store error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub hash: [u8; 32],
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses: u32,
    pub labels: BTreeMap<String, String>,
    pub created_by: String,
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses_left: u32,
    pub uses_total: u32,
    pub labels: BTreeMap<String, String>,
    pub revoked: bool,
    pub created_by: String,
}

/// An agent being enrolled.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub hostname: String,
    pub enrolled_at_ms: i64,
    pub cert_serial: String,
    pub cert_not_after_ms: i64,
}

/// What the agent said in its hello.
#[derive(Debug, Clone)]
pub struct HelloRecord {
    pub agent_id: String,
    pub hostname: String,
    pub agent_version: String,
    pub role: i32,
    pub labels: BTreeMap<String, String>,
    pub product: proto::ProductSummary,
    pub host: proto::HostFacts,
    pub at_ms: i64,
    /// Serial of the certificate the agent connected with: its other
    /// certificates that expire no later than this one are retired
    /// (revoked) by this connect; the agent holds this one, so they are no
    /// use to it, only to whoever copied their keys.
    pub cert_serial: String,
}

/// What recording a hello gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    /// The highest stored report seq (the hello's `Welcome.last_stored_seq`).
    pub last_seq: u64,
    /// Hello labels that contradicted a bound label and were not stored.
    pub ignored_labels: Vec<crate::domain::bound_labels::IgnoredLabel>,
    /// The agent's older certificates this connect revoked: it now uses a
    /// renewed one, so a copy of an old key is worth nothing any more.
    pub retired_serials: Vec<String>,
}

/// One report to store.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub agent_id: String,
    pub received_at_ms: i64,
    pub report: proto::Report,
}

/// An agent's receipt for a command (stored as "accepted" or "refused: <reason>").
/// Stored with the next ingest batch: after a fleet-wide recheck thousands
/// arrive together, and a transaction of their own each was the round
/// trip's bottleneck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub agent_id: String,
    pub command_id: String,
    pub receipt: Receipt,
}

#[derive(Debug, Clone, Default)]
pub struct AgentRow {
    pub id: String,
    pub hostname: String,
    pub agent_version: String,
    pub role: i32,
    pub labels: BTreeMap<String, String>,
    pub enrolled_at_ms: i64,
    pub last_seen_ms: i64,
    pub connected: bool,
    pub revoked: bool,
    pub product: proto::ProductSummary,
    pub host: proto::HostFacts,
    pub last_seq: u64,
    pub last_report_at_ms: i64,
    pub dropped_reports: u64,
    /// Reports the agent set aside after the coordinator refused them
    /// again and again (issue 24 point 6).
    pub dead_letters: u64,
    /// The agent's clock minus the coordinator's, from its newest report
    /// ([`crate::domain::clock_skew`]; 0 until measured).
    pub clock_skew_ms: i64,
    /// Some column of the stored row could not be read as its type and was
    /// read as a substitute (counted in `rollcall_store_rows_undecodable`):
    /// shown with the agent so an admin sees which row to look at.
    pub unreadable: bool,
}

/// One agent's latest check run (see [`RolloutStore::latest_checks_since`]).
#[derive(Debug, Clone)]
pub struct CheckRunRow {
    pub agent_id: String,
    /// When the probe observed it, on the coordinator's clock.
    pub observed_at_ms: i64,
    /// When the coordinator received it: what readers order by.
    pub received_at_ms: i64,
    pub checks: Vec<proto::CheckResult>,
}

#[derive(Debug, Clone, Default)]
pub struct RevokedSets {
    pub agent_ids: Vec<String>,
    pub serials: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub version: u64,
    pub toml: String,
    pub applied_at_ms: i64,
    pub applied_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRow {
    pub id: String,
    pub target: String,
    pub grace_ms: i64,
    pub recheck_every_ms: i64,
    pub max_attempts: u32,
    pub selector: String,
    pub auto_update_now: bool,
    pub started_at_ms: i64,
    pub started_by: String,
    pub cancelled_at_ms: Option<i64>,
}

/// One agent's place in one rollout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRow {
    pub rollout_id: String,
    pub agent_id: String,
    /// Pending, completed or straggler (soft or hard); stored as the
    /// `state` and `hard` columns.
    pub state: MemberState,
    /// When the member entered its current state (soft and hard count separately).
    pub since_ms: i64,
    pub attempts: u32,
    pub next_recheck_ms: i64,
    pub cause: String,
    pub failing: Vec<String>,
    pub update_agent: String,
    pub blocks: u32,
    /// The cause for which an automatic update_now was already pushed.
    pub auto_update_for: String,
    /// When the engine last sent this member a recheck (coordinator clock,
    /// 0 = never): step 7 needs a check run observed after it.
    pub rechecked_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRow {
    pub rollout_id: String,
    pub agent_id: String,
    pub at_ms: i64,
    pub from_state: String,
    pub to_state: String,
    pub cause: String,
}

/// A command to one agent, queued until delivered or expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandRow {
    pub id: String,
    /// All commands of one admin call or engine wave share a batch.
    pub batch_id: String,
    pub agent_id: String,
    pub kind: i32,
    pub rollout_id: String,
    pub target: String,
    /// admin, schedule or auto.
    pub origin: String,
    pub splay_ms: u32,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
    /// Nothing until the agent answers the command; accepted or refused (why).
    pub receipt: Receipt,
    pub answered_at_ms: Option<i64>,
    pub answer_version: String,
    pub expired: bool,
}

/// A command an ingest transaction settled (see [`IngestStore::ingest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub batch_id: String,
    /// The answering report's version; `None` when the agent refused it.
    pub answer: Option<String>,
    /// An answer to a command the agent had refused before (it moves from
    /// the refused count to the answered one, as [`BATCH_TALLY_SQL`] does).
    pub was_refused: bool,
}

/// Counts of one command batch (see [`CommandStore::batch_tally`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTally {
    /// Answered commands by the version the answering report showed.
    pub answered_by_version: Vec<(String, u64)>,
    /// Commands the agent refused (receipt "refused: …") and did not answer.
    pub refused: u64,
}

/// The checks of a stored report body, in runbook order; an unreadable
/// body has none (counted and logged by [`rows::decode_report`]).
pub(crate) fn checks_of_report(body: &[u8]) -> Vec<proto::CheckResult> {
    let mut checks = rows::decode_report(body)
        .map(|report| report.checks)
        .unwrap_or_default();
    checks.sort_by(|a, b| (a.runbook_step, &a.name).cmp(&(b.runbook_step, &b.name)));
    checks
}

/// Groups a batch's rows in both stores: state `a` answered (with its
/// version), `r` refused, `p` pending.
pub(crate) const BATCH_TALLY_SQL: &str = "SELECT CASE WHEN answered_at IS NOT NULL THEN 'a'
            WHEN refused THEN 'r' ELSE 'p' END AS state,
        CASE WHEN answered_at IS NOT NULL THEN answer_version ELSE '' END AS version,
        count(*) AS n
    FROM commands WHERE batch_id = $1 GROUP BY 1, 2";

impl BatchTally {
    /// Commands answered or refused.
    pub fn settled(&self) -> u64 {
        self.refused + self.answered_by_version.iter().map(|(_, n)| n).sum::<u64>()
    }

    /// Counts one settled command of this batch.
    pub fn record(&mut self, settled: &Settled) {
        let Some(version) = &settled.answer else {
            self.refused += 1;
            return;
        };
        if settled.was_refused {
            self.refused = self.refused.saturating_sub(1);
        }
        match self.answered_by_version.iter_mut().find(|(known, _)| known == version) {
            Some((_, count)) => *count += 1,
            None => self.answered_by_version.push((version.clone(), 1)),
        }
    }

    /// Adds one grouped row of [`BATCH_TALLY_SQL`].
    pub(crate) fn add(&mut self, state: &str, version: String, count: i64) {
        let count = u64::try_from(count).unwrap_or(0);
        match state {
            "a" => self.answered_by_version.push((version, count)),
            "r" => self.refused += count,
            _ => {}
        }
    }
}

/// One state-changing admin call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    /// The call, e.g. `token.create`, `rollout.start`, `agent.revoke`.
    pub action: String,
    /// What it acted on, with its arguments.
    pub target: String,
    /// `ok`, or `error: …`.
    pub result: String,
}

/// An admin certificate the coordinator issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCertRow {
    pub serial: String,
    pub name: String,
    pub role: String,
    pub issued_at_ms: i64,
    pub not_after_ms: i64,
    pub issued_by: String,
    pub revoked_at_ms: Option<i64>,
}

/// A stored report without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportMeta {
    pub agent_id: String,
    pub seq: u64,
    pub kind: i32,
    /// On the coordinator's clock ([`crate::domain::clock_skew`]).
    pub observed_at_ms: i64,
    pub received_at_ms: i64,
    pub command_id: String,
    /// The product version the report observed.
    pub version: String,
    /// An Update Now outcome saying the agent's config allows no update
    /// action (filled by [`FleetStore::reports_meta`] only).
    pub update_now_refused: bool,
}

/// Whether a stored report body is an Update Now the agent refused.
pub(crate) fn update_now_refused(body: &[u8]) -> bool {
    rows::decode_report(body)
        .and_then(|report| report.update_now)
        .is_some_and(|outcome| !outcome.allowed)
}

/// The one rule for whether a token can be spent, shared by
/// [`EnrolmentStore::check_token`] and [`EnrolmentStore::enroll_agent`] of both stores.
pub(crate) fn token_usable(revoked: bool, expires_at_ms: i64, uses_left: i64, now_ms: i64) -> StoreResult<()> {
    if revoked {
        return Err(StoreError::TokenRevoked);
    }
    if expires_at_ms <= now_ms {
        return Err(StoreError::TokenExpired);
    }
    if uses_left <= 0 {
        return Err(StoreError::TokenUsedUp);
    }
    Ok(())
}

/// What report retention keeps besides each agent's latest report and the
/// report holding its latest check run (both always kept: diagnosis reads
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionKeep {
    /// Keep `update_now_agent` reports observed at or after this: the
    /// support report of a running rollout counts them since its start.
    pub update_now_since_ms: Option<i64>,
}

/// What one retention batch did (see [`RetentionStore::delete_old_reports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionBatch {
    pub deleted: u64,
    /// Where the next batch starts; `None` when the pass is done.
    pub next: Option<i64>,
}

/// A wake-up between replicas: what changed, never the data itself (that is
/// read from the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// Commands were queued for these agents (empty: for any agent).
    Commands { agent_ids: Vec<String> },
    /// An agent was revoked, with its certificates.
    Revoked { agent_id: String },
    /// An admin's certificates were revoked (older replicas, which cannot
    /// parse this, resynchronise everything instead).
    AdminRevoked { name: String },
    /// A policy version was applied.
    Policy { version: u64 },
    /// The wake-up channel was (re)established: reload everything.
    Resync,
}
