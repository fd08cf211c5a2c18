//! The coordinator's durable state, behind one trait so SQLite (embedded,
//! the default) and PostgreSQL (several replicas) behave the same.
//!
//! Invariants every implementation keeps:
//! - a report is stored at most once per (agent, seq);
//! - `ingest` returns only after the batch is durable (committed);
//! - token consumption and agent creation happen in one transaction, so a
//!   token is never over-used under concurrency;
//! - secrets are never stored: tokens as SHA-256 hashes only.

pub mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
use rollcall_common::proto;

/// Errors callers must tell apart.
#[derive(Debug, thiserror::Error)]
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
}

/// One report to store.
#[derive(Debug, Clone)]
pub struct ReportRecord {
    pub agent_id: String,
    pub received_at_ms: i64,
    pub report: proto::Report,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn create_token(&self, token: NewToken) -> StoreResult<()>;
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>>;
    /// True when a token with that id existed.
    async fn revoke_token(&self, id: &str) -> StoreResult<bool>;

    /// Spends one use of the token and creates the agent, atomically.
    /// Returns the token's labels.
    async fn enroll_agent(&self, token_hash: [u8; 32], now_ms: i64, agent: NewAgent) -> StoreResult<BTreeMap<String, String>>;
    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()>;

    /// Marks the agent connected and records its hello; returns the highest
    /// stored report seq. Fails with NotFound for unknown agents.
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<u64>;
    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()>;
    /// Marks every agent disconnected (start-up of a single coordinator).
    async fn reset_connections(&self) -> StoreResult<()>;
    /// Batched heartbeats: (agent id, last seen).
    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()>;

    /// Stores a batch of reports durably; duplicates (agent, seq) are ignored.
    async fn ingest(&self, batch: Vec<ReportRecord>) -> StoreResult<()>;

    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>>;
    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>>;
    /// The checks of the agent's latest report and when it was observed.
    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)>;
    /// Revokes the agent and all its certificates; true when it existed.
    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
    async fn revoked(&self) -> StoreResult<RevokedSets>;

    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64>;
    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>>;

    /// Counts stored reports (tests and the reliability figures).
    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64>;
}
