//! The store's interface, split by concern: each front end and worker
//! names the part it uses, and [`Store`] is their union, so
//! `Arc<dyn Store>` holds either store. Calling a method on a concrete
//! store (tests) needs its trait in scope: `use crate::store::traits::*`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rollcall_common::proto;

use super::{
    AdminCertRow, AgentRow, AuditRow, BatchTally, CheckRunRow, CommandRow, Connected, HelloRecord, MemberRow, NewAgent,
    NewToken, Notice, PolicyRow, PruneTable, ReceiptRecord, ReportMeta, ReportRecord, RetentionBatch, RetentionKeep,
    RevokedSets, RolloutRow, Settled, StoreResult, TokenRow, TransitionRow, bundles, roster,
};

/// Everything a coordinator needs of its store: the union of the traits
/// below, implemented for every type that implements them all.
/// Ids per query of [`FleetStore::latest_checks_of`]: 100,000 agents are
/// two queries.
pub const LATEST_CHECKS_CHUNK: usize = 50_000;

pub trait Store:
    EnrolmentStore
    + PresenceStore
    + IngestStore
    + FleetStore
    + PolicyStore
    + RolloutStore
    + CommandStore
    + AuditStore
    + BundleStore
    + RetentionStore
    + ReplicationStore
    + RosterStore
{
}

impl<T> Store for T where
    T: EnrolmentStore
        + PresenceStore
        + IngestStore
        + FleetStore
        + PolicyStore
        + RolloutStore
        + CommandStore
        + AuditStore
        + BundleStore
        + RetentionStore
        + ReplicationStore
        + RosterStore
{
}

/// Enrolment tokens and agent identities: who may join, who is revoked.
#[async_trait]
pub trait EnrolmentStore: Send + Sync + 'static {
    async fn create_token(&self, token: NewToken) -> StoreResult<()>;

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>>;

    /// True when a token with that id existed.
    async fn revoke_token(&self, id: &str) -> StoreResult<bool>;

    /// Whether the token could be spent now, without spending it: the
    /// coordinator asks this before it verifies a CSR and signs, so an
    /// unauthorised enrolment costs one indexed read, not a signature.
    async fn check_token(&self, token_hash: [u8; 32], now_ms: i64) -> StoreResult<()>;

    /// Spends one use of the token and creates the agent, atomically.
    /// Returns the token's labels.
    async fn enroll_agent(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
        agent: NewAgent,
    ) -> StoreResult<BTreeMap<String, String>>;

    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()>;

    /// Revokes the agent and all its certificates; true when it existed.
    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool>;

    async fn revoked(&self) -> StoreResult<RevokedSets>;
}

/// Which agents are connected, and when each was last seen.
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Marks the agent connected and records its hello, its labels merged
    /// under the ones its enrolment token bound ([`crate::domain::bound_labels`]);
    /// returns the highest stored report seq and the hello labels ignored.
    /// Fails with NotFound for unknown agents.
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<Connected>;

    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()>;

    /// Marks every agent disconnected (start-up of a single coordinator).
    async fn reset_connections(&self) -> StoreResult<()>;

    /// Batched heartbeats: (agent id, last seen).
    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()>;

    /// Marks agents whose streams this replica holds as connected here,
    /// where their rows say otherwise. With several replicas, a hello that
    /// another replica processed late (the agent had already given up on it
    /// and connected here) overwrites the row, and that stale stream's end
    /// then clears `connected`; this puts it right. One process (SQLite)
    /// has no such race: nothing to do by default.
    async fn reassert_presence(&self, _held: Vec<String>) -> StoreResult<u64> {
        Ok(0)
    }
}

/// Durable ingest of reports and command receipts.
#[async_trait]
pub trait IngestStore: Send + Sync + 'static {
    /// Stores a batch of reports durably, and command receipts, in one
    /// transaction; a report whose seq is not above its agent's highest
    /// stored one is a re-send and ignored, and a receipt only names a
    /// command of its own agent (a refusal is final). Returns the commands
    /// the transaction settled, so progress is counted without a query.
    async fn ingest(&self, batch: Vec<ReportRecord>, receipts: Vec<ReceiptRecord>) -> StoreResult<Vec<Settled>>;

    /// How many `ingest` calls may usefully run at once (on disjoint
    /// agents): one where the store has a single writer.
    fn ingest_writers(&self) -> usize {
        1
    }

    /// Housekeeping the coordinator runs about once a second (SQLite moves
    /// its write-ahead log into the database file); nothing by default.
    async fn checkpoint(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// Reads of the fleet: agents, their latest checks, stored reports.
#[async_trait]
pub trait FleetStore: Send + Sync + 'static {
    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>>;

    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>>;

    /// The agent's latest check run (the checks of its newest report that
    /// carries any) and when it was observed.
    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)>;

    /// The latest check runs of many agents at once (the step-8 report,
    /// stragglers), in one query per [`LATEST_CHECKS_CHUNK`] ids: agent id
    /// → its checks; an agent without a run is absent.
    async fn latest_checks_of(
        &self,
        ids: Vec<String>,
    ) -> StoreResult<std::collections::HashMap<String, Vec<proto::CheckResult>>>;

    /// Reports of one kind observed since `since_ms` (bodies read only for
    /// [`ReportMeta::update_now_refused`]).
    async fn reports_meta(&self, kind: i32, since_ms: i64) -> StoreResult<Vec<ReportMeta>>;

    /// Reports received in `from_ms..=to_ms` (without bodies), in receive
    /// order: what agents reported after an Update Now.
    async fn reports_received(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ReportMeta>>;

    /// Counts stored reports (tests and the reliability figures).
    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64>;
}

/// The fleet policy's versions.
#[async_trait]
pub trait PolicyStore: Send + Sync + 'static {
    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64>;

    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>>;
}

/// Rollouts, their members' state machines and transitions.
#[async_trait]
pub trait RolloutStore: Send + Sync + 'static {
    async fn create_rollout(&self, rollout: RolloutRow) -> StoreResult<()>;

    /// Newest first.
    async fn list_rollouts(&self) -> StoreResult<Vec<RolloutRow>>;

    async fn cancel_rollout(&self, id: &str, at_ms: i64) -> StoreResult<bool>;

    async fn members(&self, rollout_id: &str) -> StoreResult<Vec<MemberRow>>;

    /// Upserts members and appends transitions, in one transaction.
    async fn save_members(&self, members: Vec<MemberRow>, transitions: Vec<TransitionRow>) -> StoreResult<()>;

    async fn transitions(&self, rollout_id: &str) -> StoreResult<Vec<TransitionRow>>;

    /// The latest check run of every agent whose run was *received* after
    /// `after_ms` (the coordinator's clock: an agent's clock never decides
    /// what a reader sees as new).
    async fn latest_checks_since(&self, after_ms: i64) -> StoreResult<Vec<CheckRunRow>>;

    /// Every rollout state change of one agent, oldest first.
    async fn agent_transitions(&self, agent_id: &str) -> StoreResult<Vec<TransitionRow>>;
}

/// Commands to agents: rows first, then delivered, answered or expired.
#[async_trait]
pub trait CommandStore: Send + Sync + 'static {
    /// Stores new commands; a row with `delivered_at_ms` set is stored
    /// already claimed by the caller (see [`CommandStore::claim_delivery`]).
    async fn create_commands(&self, commands: Vec<CommandRow>) -> StoreResult<()>;

    /// Commands not yet delivered to the agent and not expired at `now_ms`.
    async fn undelivered_commands(&self, agent_id: &str, now_ms: i64) -> StoreResult<Vec<CommandRow>>;

    async fn mark_delivered(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<()>;

    /// Marks undelivered commands past their expiry; returns how many.
    async fn expire_commands(&self, now_ms: i64) -> StoreResult<u64>;

    async fn batch_commands(&self, batch_id: &str) -> StoreResult<Vec<CommandRow>>;

    /// How a batch stands, counted by the store: what a progress poll needs
    /// without reading every row of a fleet-wide batch.
    async fn batch_tally(&self, batch_id: &str) -> StoreResult<BatchTally>;

    /// Every command of a rollout (the support report's update-now figures).
    async fn rollout_commands(&self, rollout_id: &str) -> StoreResult<Vec<CommandRow>>;

    /// Undelivered, unexpired commands for these agents (`None`: any agent),
    /// oldest first, at most `limit`.
    async fn undelivered_for_agents(
        &self,
        agent_ids: Option<Vec<String>>,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<CommandRow>>;

    /// Marks the commands delivered if nobody did yet; returns the ids this
    /// call marked. Deliver only those: two paths racing to deliver the same
    /// command (a reconnect and a wake-up) push it once.
    async fn claim_delivery(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<Vec<String>>;

    /// Undoes a claim whose push failed, so a later reconnect delivers it.
    async fn release_delivery(&self, ids: Vec<String>) -> StoreResult<()>;
}

/// The audit log and the admin certificates issued.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, row: AuditRow) -> StoreResult<()>;

    /// The newest `limit` entries, oldest first.
    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>>;

    async fn record_admin_certificate(&self, row: AdminCertRow) -> StoreResult<()>;

    async fn list_admin_certificates(&self) -> StoreResult<Vec<AdminCertRow>>;

    /// Revokes every live certificate of admin `name`; returns their serials.
    async fn revoke_admin_certificates(&self, name: &str, at_ms: i64) -> StoreResult<Vec<String>>;
}

/// Log bundles (runbook step 8; see [`super::bundles`]).
#[async_trait]
pub trait BundleStore: Send + Sync + 'static {
    /// Appends one chunk of a bundle in one transaction, after the checks of
    /// [`bundles`] (a collect command of this very agent, chunks in order,
    /// within `max_bytes`); the outer error is the store's, the inner one
    /// says why the chunk was refused. The last chunk completes the bundle,
    /// answers its command and drops the agent's older bundles.
    async fn put_bundle_chunk(&self, chunk: bundles::ChunkRecord) -> StoreResult<Result<bundles::BundleRow, String>>;

    /// Every stored bundle (complete or still arriving), without data.
    async fn list_bundles(&self) -> StoreResult<Vec<bundles::BundleRow>>;

    /// The bytes of a complete bundle, chunks in order.
    async fn bundle_data(&self, command_id: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// Report retention and the store's size.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// One retention batch, in one short transaction: of the next `limit`
    /// reports in arrival order from `cursor` (0 to start a pass), deletes
    /// those received before `before_ms`, except each agent's latest report,
    /// the one holding its latest check run, and what `keep` names. The
    /// cursor is the store's own (SQLite: report id; PostgreSQL: receive time).
    async fn delete_old_reports(
        &self,
        before_ms: i64,
        keep: RetentionKeep,
        cursor: i64,
        limit: u32,
    ) -> StoreResult<RetentionBatch>;

    /// One pruning batch, in one short transaction: deletes at most `limit`
    /// rows of `table` older than `before_ms` (what "older" means per table,
    /// and what is always kept: [`PruneTable`]). Fewer than `limit` deleted
    /// means the table has nothing more to prune.
    async fn prune(&self, table: PruneTable, before_ms: i64, limit: u32) -> StoreResult<u64>;

    /// Bytes the store takes (SQLite: the database file and its write-ahead
    /// log; PostgreSQL: rollcall's tables with their indexes and TOAST).
    async fn store_bytes(&self) -> StoreResult<u64>;
}

/// What replicas share (PostgreSQL); a single SQLite process answers trivially.
#[async_trait]
pub trait ReplicationStore: Send + Sync + 'static {
    /// Takes or renews the lease `name` for `holder` for `ttl_ms`; true when
    /// `holder` holds it now. Scheduled work runs only under its lease, so it
    /// runs once across replicas. SQLite (one process): always granted.
    async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool>;

    /// Gives the lease up (clean shutdown), so another replica takes it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;

    /// Tells the other replicas that something they keep in memory changed
    /// (a wake-up, after the change committed). SQLite: nobody to tell.
    async fn notify(&self, notice: Notice) -> StoreResult<()>;

    /// Wake-ups from the other replicas until `shutdown`; `None` when this
    /// store has a single process (SQLite). After every (re)connection of the
    /// channel a [`Notice::Resync`] comes first: anything may have been missed.
    async fn subscribe(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Notice>>>;
}

/// The roster: every endpoint the managed product lists
/// ([`crate::store::roster`]).
#[async_trait]
pub trait RosterStore: Send + Sync + 'static {
    /// Replaces the whole roster, in batches under a new generation made
    /// current at the end (readers see the old roster or the new, never a
    /// mix), and clears the last error.
    async fn replace_roster(&self, source: &str, entries: Vec<roster::RosterEntry>, at_ms: i64) -> StoreResult<()>;

    /// Records a failed pass; the roster itself is kept.
    async fn record_roster_error(&self, error: &str, at_ms: i64) -> StoreResult<()>;

    async fn roster_status(&self) -> StoreResult<roster::RosterStatusRow>;

    /// The current roster, in the order it was stored.
    async fn roster_entries(&self) -> StoreResult<Vec<roster::RosterEntry>>;
}
