//! The shared store: one PostgreSQL database behind several coordinator
//! replicas (`serve --database-url postgres://…`).
//!
//! Same tables and semantics as the SQLite store (`migrations/*.postgres.sql`
//! mirror `schema_sqlite*.sql`), plus what replicas need:
//! - migrations run under an advisory lock, so replicas may start at once;
//! - each agent row records the replica holding its stream, so a replica
//!   that restarts clears only its own agents' `connected` flags, and a
//!   stream ending late on one replica does not mark offline an agent that
//!   already reconnected to another;
//! - leases (`leases` table, the database's clock) so scheduled work runs on
//!   one replica at a time;
//! - wake-ups through LISTEN/NOTIFY on the channel [`CHANNEL`] — sent after
//!   the change committed and never from inside an ingest transaction.
//!
//! Connections: a small pool ([`POOL_SIZE`]); a caller waits for a free one
//! at most [`POOL_WAIT`], then gets `Unavailable`. Every connection task
//! ends when the store is dropped. TLS (rustls) as the URL's `sslmode` and
//! `sslrootcert` ask: see [`super::postgres_tls`].
//!
//! Files: `pool.rs` the connections and URL parsing, `notify.rs` the
//! wake-ups, `errors.rs` error mapping, `bundles.rs` log bundles; row
//! decoding is shared with SQLite ([`super::rows`]).
//!
//! Ingest writes a batch with up to four statements (command refusals,
//! reports, agents with their latest check run, answered commands), each
//! over `UNNEST`ed arrays, in one transaction; the coordinator runs
//! `INGEST_WRITERS` (4) such ingest workers at once, each on its own share
//! of the agents. It returns after every commit
//! (synchronous_commit on, the server default), so acknowledged means
//! durable here too.
//!
//! Longer than ~400 lines: the store itself, its connection handling and its
//! ingest across four writers; the trait impls are one file each beside it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use prost::Message;
use rollcall_common::proto;
use tokio::sync::{Semaphore, mpsc};
use tokio_postgres::{Client, Row};
use tokio_util::sync::CancellationToken;

use super::rows::{self, labels_from_json, labels_json, to_sql, u64_of};
use super::traits::*;
use super::{
    AdminCertRow, AgentRow, AuditRow, CheckRunRow, CommandRow, Connected, HelloRecord, MemberRow, NewAgent, NewToken,
    Notice, PolicyRow, ReceiptRecord, ReportMeta, ReportRecord, RetentionBatch, RetentionKeep, RevokedSets, RolloutRow,
    Settled, StoreError, StoreResult, TokenRow, TransitionRow,
};

mod audit;
mod bundles;
mod commands;
mod enrolment;
mod errors;
mod fleet;
mod ingest;
mod notify;
mod policy;
mod pool;
mod presence;
mod replication;
mod retention;
mod rollouts;
mod roster;

use errors::{describe, map_err};
pub use notify::{CHANNEL, NOTICE_QUEUE};
use notify::{encode_notice, listen};
pub use pool::{POOL_SIZE, POOL_WAIT, PgTarget, describe_target, parse_url};
use pool::{Pool, Pooled, connect_client};

/// Ingest transactions in flight at once (one per ingest worker, each on
/// its own agents): PostgreSQL commits them in parallel and shares WAL
/// flushes between them.
const INGEST_WRITERS: usize = 4;
/// Tries of an ingest transaction PostgreSQL aborted to break a deadlock.
const INGEST_ATTEMPTS: u64 = 4;
/// Advisory lock keys (any constant both sides agree on).
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"rollcall");
const POLICY_LOCK: i64 = i64::from_be_bytes(*b"rcpolicy");
/// The database's clock in ms: leases do not depend on replicas' clocks.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Text columns sort as bytes, as SQLite sorts them.
const C: &str = "COLLATE \"C\"";

pub struct PgStore {
    pool: Pool,
    /// This replica's id: recorded on the agents it holds, and the sender of
    /// its wake-ups (which it then ignores).
    replica: String,
}

impl PgStore {
    /// Connects and applies migrations (safe while other replicas do too).
    pub async fn connect(url: &str, replica: &str) -> anyhow::Result<Self> {
        let target = parse_url(url, replica)?;
        let described = describe_target(&target.config);
        let closed = CancellationToken::new();
        let mut client = connect_client(&target, &closed)
            .await
            .map_err(|error| anyhow::anyhow!("connect to the database {described}: {error}"))?;
        migrate(&mut client)
            .await
            .map_err(|error| anyhow::anyhow!("migrate the database {described}: {}", describe(&error)))?;
        let pool = Pool {
            target,
            idle: Mutex::new(vec![client]),
            permits: Semaphore::new(POOL_SIZE),
            closed,
        };
        Ok(PgStore {
            pool,
            replica: replica.to_string(),
        })
    }

    pub fn replica(&self) -> &str {
        &self.replica
    }

    async fn client(&self) -> StoreResult<Pooled<'_>> {
        self.pool.get().await
    }

    async fn query(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        self.client().await?.query(sql, params).await.map_err(map_err)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> StoreResult<u64> {
        self.client().await?.execute(sql, params).await.map_err(map_err)
    }

    /// Stores one batch in one transaction (see [`IngestStore::ingest`]).
    async fn ingest_batch(&self, batch: &[ReportRecord], receipts: &[ReceiptRecord]) -> StoreResult<Vec<Settled>> {
        let mut settled = Vec::new();
        if batch.is_empty() && receipts.is_empty() {
            return Ok(settled);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;

        // 0. Receipts: a command of the receipt's own agent only.
        if !receipts.is_empty() {
            let mut columns: (Vec<String>, Vec<String>, Vec<String>, Vec<bool>) = Default::default();
            for receipt in receipts {
                columns.0.push(receipt.command_id.clone());
                columns.1.push(receipt.agent_id.clone());
                columns.2.push(receipt.receipt.storage());
                columns.3.push(receipt.receipt.is_refused());
            }
            // A refusal is final; one of an unanswered command settles it.
            let rows = tx
                .query(
                    "UPDATE commands c SET receipt = r.receipt, refused = r.refused
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[]) AS r(id, agent_id, receipt, refused)
                     WHERE c.id = r.id AND c.agent_id = r.agent_id AND NOT c.refused
                     RETURNING c.batch_id, c.answered_at IS NULL AND c.refused",
                    &[&columns.0, &columns.1, &columns.2, &columns.3],
                )
                .await
                .map_err(map_err)?;
            for row in rows {
                if row.try_get::<_, bool>(1).map_err(map_err)? {
                    settled.push(Settled {
                        batch_id: row.try_get(0).map_err(map_err)?,
                        answer: None,
                        was_refused: false,
                    });
                }
            }
        }
        if batch.is_empty() {
            tx.commit().await.map_err(map_err)?;
            return Ok(settled);
        }

        // 1. Reports, in seq order per agent: acknowledgements are
        //    cumulative, so a seq not above the agent's highest stored one
        //    (before this batch, or earlier in it) is a re-send and skipped;
        //    RETURNING says which are new.
        let mut highest: HashMap<&str, u64> = HashMap::new();
        let batch: Vec<&ReportRecord> = batch
            .iter()
            .filter(|record| {
                let seen = highest.entry(record.agent_id.as_str()).or_insert(0);
                let new = record.report.seq > *seen;
                *seen = (*seen).max(record.report.seq);
                new
            })
            .collect();
        let mut agent_ids = Vec::with_capacity(batch.len());
        let mut seqs = Vec::with_capacity(batch.len());
        let mut kinds = Vec::with_capacity(batch.len());
        let mut observed = Vec::with_capacity(batch.len());
        let mut received = Vec::with_capacity(batch.len());
        let mut command_ids = Vec::with_capacity(batch.len());
        let mut versions = Vec::with_capacity(batch.len());
        let mut bodies = Vec::with_capacity(batch.len());
        for record in &batch {
            let report = &record.report;
            agent_ids.push(record.agent_id.clone());
            seqs.push(to_sql(report.seq));
            kinds.push(i64::from(report.kind));
            observed.push(crate::domain::clock_skew::reading(&record.report, record.received_at_ms).observed_at_ms);
            received.push(record.received_at_ms);
            command_ids.push(report.command_id.clone());
            versions.push(
                report
                    .product
                    .as_ref()
                    .map(|product| product.version.clone())
                    .unwrap_or_default(),
            );
            bodies.push(report.encode_to_vec());
        }
        let inserted_rows = tx
            .query(
                "INSERT INTO reports (agent_id, seq, kind, observed_at, received_at, command_id, version, body)
                 SELECT u.* FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                                        $6::text[], $7::text[], $8::bytea[])
                        AS u(agent_id, seq, kind, observed_at, received_at, command_id, version, body)
                 LEFT JOIN agents a ON a.id = u.agent_id
                 WHERE a.last_seq IS NULL OR u.seq > a.last_seq
                 ON CONFLICT (agent_id, seq) DO NOTHING
                 RETURNING agent_id, seq",
                &[
                    &agent_ids,
                    &seqs,
                    &kinds,
                    &observed,
                    &received,
                    &command_ids,
                    &versions,
                    &bodies,
                ],
            )
            .await
            .map_err(map_err)?;
        let mut inserted = std::collections::HashSet::with_capacity(inserted_rows.len());
        for row in &inserted_rows {
            let agent: String = row.try_get(0).map_err(map_err)?;
            let seq: i64 = row.try_get(1).map_err(map_err)?;
            inserted.insert((agent, seq));
        }
        if inserted.is_empty() {
            // All re-sends after lost acknowledgements.
            tx.commit().await.map_err(map_err)?;
            return Ok(settled);
        }

        // The new reports, in batch order.
        let mut fresh = Vec::with_capacity(inserted.len());
        for record in batch {
            if inserted.remove(&(record.agent_id.clone(), to_sql(record.report.seq))) {
                fresh.push(record);
            }
        }

        // 2. Agents: what applying the reports one by one would leave. The
        //    newest facts are the highest seq (batch order per agent), never
        //    the agent's clock.
        struct AgentUpdate {
            seq: i64,
            received: i64,
            observed: i64,
            dropped: i64,
            dead: i64,
            product: Vec<u8>,
            host: Vec<u8>,
            version: String,
            skew: i64,
            /// The newest report with checks: (observed, seq, received).
            checks: Option<(i64, i64, i64)>,
        }
        let mut agents: HashMap<&str, AgentUpdate> = HashMap::new();
        // 3. Commands the reports answer: the first answer counts.
        let mut answers: HashMap<(&str, &str), (i64, String)> = HashMap::new();
        for record in &fresh {
            let report = &record.report;
            let clock = crate::domain::clock_skew::reading(&record.report, record.received_at_ms);
            let product = report.product.clone().unwrap_or_default();
            let update = agents.entry(record.agent_id.as_str()).or_insert(AgentUpdate {
                seq: 0,
                received: i64::MIN,
                observed: i64::MIN,
                dropped: 0,
                dead: 0,
                product: Vec::new(),
                host: Vec::new(),
                version: String::new(),
                skew: 0,
                checks: None,
            });
            update.seq = update.seq.max(to_sql(report.seq));
            update.received = update.received.max(record.received_at_ms);
            update.dropped = update.dropped.saturating_add(to_sql(report.dropped_before));
            update.dead = update.dead.saturating_add(to_sql(report.dead_lettered_before));
            update.observed = update.observed.max(clock.observed_at_ms);
            update.product = product.encode_to_vec();
            update.host = report.host.clone().unwrap_or_default().encode_to_vec();
            update.version = product.version.clone();
            update.skew = clock.skew_ms;
            if !report.command_id.is_empty() {
                answers
                    .entry((report.command_id.as_str(), record.agent_id.as_str()))
                    .or_insert((record.received_at_ms, product.version.clone()));
            }
            if !report.checks.is_empty() {
                update.checks = Some((clock.observed_at_ms, to_sql(report.seq), record.received_at_ms));
            }
        }

        let mut ids = Vec::with_capacity(agents.len());
        let (mut seqs, mut received, mut observed, mut dropped) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut dead = Vec::new();
        let (mut products, mut hosts, mut versions, mut skews) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut checks_seqs, mut checks_ats, mut checks_received) = (Vec::new(), Vec::new(), Vec::new());
        for (id, update) in agents {
            checks_seqs.push(update.checks.map(|(_, seq, _)| seq));
            checks_ats.push(update.checks.map_or(0, |(observed_at, _, _)| observed_at));
            checks_received.push(update.checks.map_or(0, |(_, _, received_at)| received_at));
            ids.push(id.to_string());
            seqs.push(update.seq);
            received.push(update.received);
            observed.push(update.observed);
            dropped.push(update.dropped);
            dead.push(update.dead);
            products.push(update.product);
            hosts.push(update.host);
            versions.push(update.version);
            skews.push(update.skew);
        }
        // `a.last_seq` is the row before this update: facts older than what
        // is stored (a batch another replica committed first) do not win.
        // The dropped count saturates: BIGINT overflow would fail the whole
        // batch, and with it every other agent's reports in it.
        tx.execute(
            "UPDATE agents a SET last_seq = GREATEST(a.last_seq, u.seq), last_seen = GREATEST(a.last_seen, u.received),
                last_report_at = GREATEST(a.last_report_at, u.observed),
                dropped_reports = CASE WHEN a.dropped_reports > 9223372036854775807 - u.dropped
                                       THEN 9223372036854775807 ELSE a.dropped_reports + u.dropped END,
                dead_letters = CASE WHEN a.dead_letters > 9223372036854775807 - u.dead
                                    THEN 9223372036854775807 ELSE a.dead_letters + u.dead END,
                product = CASE WHEN u.seq > a.last_seq THEN u.product ELSE a.product END,
                host = CASE WHEN u.seq > a.last_seq THEN u.host ELSE a.host END,
                version = CASE WHEN u.seq > a.last_seq THEN u.version ELSE a.version END,
                clock_skew_ms = CASE WHEN u.seq > a.last_seq THEN u.skew ELSE a.clock_skew_ms END,
                checks_seq = CASE WHEN u.checks_seq IS NOT NULL AND u.seq > a.last_seq
                                  THEN u.checks_seq ELSE a.checks_seq END,
                checks_at = CASE WHEN u.checks_seq IS NOT NULL AND u.seq > a.last_seq
                                 THEN u.checks_at ELSE a.checks_at END,
                checks_received_at = CASE WHEN u.checks_seq IS NOT NULL AND u.seq > a.last_seq
                                          THEN u.checks_received ELSE a.checks_received_at END
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bytea[],
                         $7::bytea[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                         $13::bigint[])
                  AS u(id, seq, received, observed, dropped, product, host, version, checks_seq, checks_at,
                       checks_received, skew, dead)
             WHERE a.id = u.id",
            &[
                &ids,
                &seqs,
                &received,
                &observed,
                &dropped,
                &products,
                &hosts,
                &versions,
                &checks_seqs,
                &checks_ats,
                &checks_received,
                &skews,
                &dead,
            ],
        )
        .await
        .map_err(map_err)?;

        if !answers.is_empty() {
            let (mut command_ids, mut agent_ids, mut times, mut versions) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((command, agent), (at, version)) in answers {
                command_ids.push(command.to_string());
                agent_ids.push(agent.to_string());
                times.push(at);
                versions.push(version);
            }
            let rows = tx
                .query(
                    "UPDATE commands c SET answered_at = u.at, answer_version = u.version
                     FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[]) AS u(id, agent_id, at, version)
                     WHERE c.id = u.id AND c.agent_id = u.agent_id AND c.answered_at IS NULL
                     RETURNING c.batch_id, c.answer_version, c.refused",
                    &[&command_ids, &agent_ids, &times, &versions],
                )
                .await
                .map_err(map_err)?;
            for row in rows {
                settled.push(Settled {
                    batch_id: row.try_get(0).map_err(map_err)?,
                    answer: Some(row.try_get(1).map_err(map_err)?),
                    was_refused: row.try_get(2).map_err(map_err)?,
                });
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(settled)
    }
}

async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Replicas starting together: one migrates, the others wait on the lock
    // (released at commit) and then find nothing left to do.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let current: i64 = match tx.query_opt("SELECT version FROM schema_version", &[]).await? {
        Some(row) => row.try_get(0)?,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    for (version, sql) in
        super::migrations::pending(&super::migrations::of(super::migrations::Backend::Postgres), current)
    {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE schema_version SET version = $1", &[&version])
            .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await
}

// === rows ===

type RowResult<T> = Result<T, tokio_postgres::Error>;

fn map_rows<T>(rows: Vec<Row>, map: impl Fn(&Row) -> RowResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(|row| map(row).map_err(map_err)).collect()
}

// The store's traits, one file each: enrolment.rs, presence.rs, ingest.rs,
// fleet.rs, policy.rs, rollouts.rs, commands.rs, audit.rs, retention.rs,
// replication.rs (the same files as the SQLite store's).
