//! The shared store: one PostgreSQL database behind several coordinator
//! replicas (`serve --database-url postgres://…`).
//!
//! Same tables and semantics as the SQLite store (`schema_postgres*.sql`
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

/// Schema migrations, applied in order; the index + 1 is the schema
/// version. The first three mirror the SQLite versions; later SQLite
/// versions are appended here too, after the replica-only one.
const MIGRATIONS: &[&str] = &[
    include_str!("../schema_postgres.sql"),
    include_str!("../schema_postgres_2.sql"),
    include_str!("../schema_postgres_3.sql"),
    include_str!("../schema_postgres_replicas.sql"),
    include_str!("../schema_postgres_5.sql"),
    include_str!("../schema_postgres_6.sql"),
    include_str!("../schema_postgres_7.sql"),
    include_str!("../schema_postgres_8.sql"),
    include_str!("../schema_postgres_9.sql"),
    include_str!("../schema_postgres_10.sql"),
    include_str!("../schema_postgres_11.sql"),
    include_str!("../schema_postgres_12.sql"),
    include_str!("../schema_postgres_13.sql"),
];

mod bundles;
mod errors;
mod notify;
mod pool;
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
            observed.push(crate::clock_skew::reading(record).observed_at_ms);
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
            let clock = crate::clock_skew::reading(record);
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
    for (version, sql) in super::migrations::pending(MIGRATIONS, current) {
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

// === the store ===

#[async_trait]
impl EnrolmentStore for PgStore {
    async fn create_token(&self, token: NewToken) -> StoreResult<()> {
        self.execute(
            "INSERT INTO tokens (id, hash, created_at, expires_at, uses_left, uses_total, labels, created_by)
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
            &[
                &token.id,
                &token.hash.as_slice(),
                &token.created_at_ms,
                &token.expires_at_ms,
                &i64::from(token.uses),
                &labels_json(&token.labels),
                &token.created_by,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = self
            .query(
                "SELECT id, created_at, expires_at, uses_left, uses_total, labels, revoked, created_by
                 FROM tokens ORDER BY created_at",
                &[],
            )
            .await?;
        map_rows(rows, rows::token)
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let changed = self
            .execute("UPDATE tokens SET revoked = true WHERE id = $1", &[&id])
            .await?;
        Ok(changed > 0)
    }

    async fn check_token(&self, token_hash: [u8; 32], now_ms: i64) -> StoreResult<()> {
        let client = self.client().await?;
        let token = client
            .query_opt(
                "SELECT expires_at, uses_left, revoked FROM tokens WHERE hash = $1",
                &[&token_hash.as_slice()],
            )
            .await
            .map_err(map_err)?;
        let Some(token) = token else {
            return Err(StoreError::TokenUnknown);
        };
        rows::token_state(&token).map_err(map_err)?.usable(now_ms)
    }

    async fn enroll_agent(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
        agent: NewAgent,
    ) -> StoreResult<BTreeMap<String, String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // FOR UPDATE: concurrent enrollments with one token queue here, so
        // its uses are never over-spent.
        let token = tx
            .query_opt(
                "SELECT id, expires_at, uses_left, revoked, labels FROM tokens WHERE hash = $1 FOR UPDATE",
                &[&token_hash.as_slice()],
            )
            .await
            .map_err(map_err)?;
        let Some(token) = token else {
            return Err(StoreError::TokenUnknown);
        };
        let token_id: String = token.try_get(0).map_err(map_err)?;
        let labels = labels_from_json(token.try_get(4).map_err(map_err)?);
        rows::token_state(&token).map_err(map_err)?.usable(now_ms)?;
        tx.execute(
            "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = $1",
            &[&token_id],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO agents (id, hostname, labels, bound_labels, enrolled_at) VALUES ($1, $2, $3, $3, $4)",
            &[&agent.id, &agent.hostname, &labels_json(&labels), &agent.enrolled_at_ms],
        )
        .await
        .map_err(map_err)?;
        tx.execute(
            "INSERT INTO certificates (serial, agent_id, not_after) VALUES ($1, $2, $3)",
            &[&agent.cert_serial, &agent.id, &agent.cert_not_after_ms],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(labels)
    }

    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()> {
        self.execute(
            "INSERT INTO certificates (serial, agent_id, not_after) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING",
            &[&serial, &agent_id, &not_after_ms],
        )
        .await?;
        Ok(())
    }

    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE agents SET revoked_at = coalesce(revoked_at, $2), connected = false WHERE id = $1",
                &[&id, &at_ms],
            )
            .await
            .map_err(map_err)?;
        tx.execute("UPDATE certificates SET revoked = true WHERE agent_id = $1", &[&id])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(changed > 0)
    }

    async fn revoked(&self) -> StoreResult<RevokedSets> {
        let client = self.client().await?;
        let agents = client
            .query("SELECT id FROM agents WHERE revoked_at IS NOT NULL", &[])
            .await
            .map_err(map_err)?;
        let serials = client
            .query(
                "SELECT serial FROM certificates WHERE revoked
                 UNION SELECT serial FROM admin_certificates WHERE revoked_at IS NOT NULL",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(RevokedSets {
            agent_ids: map_rows(agents, |row| row.try_get(0))?,
            serials: map_rows(serials, |row| row.try_get(0))?,
        })
    }
}

#[async_trait]
impl PresenceStore for PgStore {
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<Connected> {
        // Bound labels win (jsonb `||` keeps the right-hand value); the bound
        // set comes back so the hello labels it overrode can be reported.
        let row = self
            .client()
            .await?
            .query_opt(
                "UPDATE agents SET hostname = $2, agent_version = $3, role = $4,
                    labels = ($5::text::jsonb || bound_labels::jsonb)::text,
                    product = $6, host = $7, version = $8, last_seen = $9, connected = true, replica = $10
                 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING last_seq, bound_labels",
                &[
                    &hello.agent_id,
                    &hello.hostname,
                    &hello.agent_version,
                    &i64::from(hello.role),
                    &labels_json(&hello.labels),
                    &hello.product.encode_to_vec(),
                    &hello.host.encode_to_vec(),
                    &hello.product.version,
                    &hello.at_ms,
                    &self.replica,
                ],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("agent {}", hello.agent_id)));
        };
        let bound = labels_from_json(row.try_get(1).map_err(map_err)?);
        let (_, ignored_labels) = crate::bound_labels::merge(&bound, &hello.labels);
        let retired = self
            .client()
            .await?
            .query(
                "UPDATE certificates SET revoked = true
                 WHERE agent_id = $1 AND NOT revoked AND serial <> $2
                   AND not_after <= (SELECT not_after FROM certificates WHERE serial = $2 AND agent_id = $1)
                 RETURNING serial",
                &[&hello.agent_id, &hello.cert_serial],
            )
            .await
            .map_err(map_err)?;
        let retired_serials = retired
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok(Connected {
            last_seq: u64_of(row.try_get(0).map_err(map_err)?),
            ignored_labels,
            retired_serials,
        })
    }

    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()> {
        // Only the holder clears the flag: the agent may already be on
        // another replica when this stream's end is noticed.
        self.execute(
            "UPDATE agents SET connected = (connected AND replica <> $3), last_seen = GREATEST(last_seen, $2)
             WHERE id = $1",
            &[&agent_id, &at_ms, &self.replica],
        )
        .await?;
        Ok(())
    }

    async fn reset_connections(&self) -> StoreResult<()> {
        // Other replicas' agents stay connected: they hold their streams.
        self.execute(
            "UPDATE agents SET connected = false WHERE connected AND replica = $1",
            &[&self.replica],
        )
        .await?;
        Ok(())
    }

    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let (ids, times): (Vec<String>, Vec<i64>) = seen.into_iter().unzip();
        // SKIP LOCKED: a row an ingest transaction holds is skipped, never
        // waited for. Waiting here, while that transaction waits for a row
        // this statement already locked, was a deadlock; and the ingest
        // moves `last_seen` forward itself.
        self.execute(
            "UPDATE agents a SET last_seen = GREATEST(a.last_seen, u.at)
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at)
             WHERE a.id = u.id
               AND a.id IN (SELECT id FROM agents WHERE id = ANY($1) FOR UPDATE SKIP LOCKED)",
            &[&ids, &times],
        )
        .await?;
        Ok(())
    }

    async fn reassert_presence(&self, held: Vec<String>) -> StoreResult<u64> {
        if held.is_empty() {
            return Ok(0);
        }
        // SKIP LOCKED, as for heartbeats: never wait for a row ingest holds.
        self.execute(
            "UPDATE agents SET connected = true, replica = $2
             WHERE id IN (SELECT id FROM agents
                          WHERE id = ANY($1) AND (NOT connected OR replica <> $2)
                          FOR UPDATE SKIP LOCKED)",
            &[&held, &self.replica],
        )
        .await
    }
}

#[async_trait]
impl IngestStore for PgStore {
    async fn ingest(&self, batch: Vec<ReportRecord>, receipts: Vec<ReceiptRecord>) -> StoreResult<Vec<Settled>> {
        // A deadlock PostgreSQL broke by aborting this transaction (another
        // replica writing the same agent's rows during a failover) is
        // retried a few times before the batch is refused and re-sent.
        let mut attempt = 1;
        loop {
            match self.ingest_batch(&batch, &receipts).await {
                Err(StoreError::Conflict(reason)) if attempt < INGEST_ATTEMPTS => {
                    tracing::debug!(%reason, attempt, "ingest conflict; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    fn ingest_writers(&self) -> usize {
        INGEST_WRITERS
    }
}

#[async_trait]
impl FleetStore for PgStore {
    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>> {
        let rows = self
            .query(&format!("SELECT * FROM agents ORDER BY hostname {C}, id {C}"), &[])
            .await?;
        map_rows(rows, rows::agent)
    }

    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT * FROM agents WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::agent).transpose().map_err(map_err)
    }

    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT r.body, a.checks_at FROM agents a
                 JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.id = $1",
                &[&id],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok((Vec::new(), 0));
        };
        let body: Vec<u8> = row.try_get(0).map_err(map_err)?;
        let observed: i64 = row.try_get(1).map_err(map_err)?;
        Ok((super::checks_of_report(&body), observed))
    }

    async fn latest_checks_of(
        &self,
        ids: Vec<String>,
    ) -> StoreResult<std::collections::HashMap<String, Vec<proto::CheckResult>>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(super::traits::LATEST_CHECKS_CHUNK) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let rows = self
                .query(
                    "SELECT a.id, r.body FROM agents a
                     JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.id = ANY($1)",
                    &[&chunk],
                )
                .await?;
            for row in rows {
                let id: String = row.try_get(0).map_err(map_err)?;
                let body: Vec<u8> = row.try_get(1).map_err(map_err)?;
                found.insert(id, super::checks_of_report(&body));
            }
        }
        Ok(found)
    }

    async fn reports_meta(&self, kind: i32, since_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        let rows = self
            .query(
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports
                 WHERE kind = $1 AND observed_at >= $2 ORDER BY observed_at",
                &[&i64::from(kind), &since_ms],
            )
            .await?;
        map_rows(rows, |row| {
            let mut meta = rows::report_meta(row)?;
            meta.update_now_refused = super::update_now_refused(&row.try_get::<_, Vec<u8>>(7)?);
            Ok(meta)
        })
    }

    async fn reports_received(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        let rows = self
            .query(
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version FROM reports
                 WHERE received_at >= $1 AND received_at <= $2 ORDER BY received_at, agent_id, seq",
                &[&from_ms, &to_ms],
            )
            .await?;
        map_rows(rows, rows::report_meta)
    }

    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64> {
        let rows = match agent_id {
            Some(id) => {
                self.query("SELECT count(*) FROM reports WHERE agent_id = $1", &[&id])
                    .await?
            }
            None => self.query("SELECT count(*) FROM reports", &[]).await?,
        };
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(map_err)?,
            None => 0,
        };
        Ok(u64_of(count))
    }
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Two replicas applying at once get consecutive versions, not a conflict.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&POLICY_LOCK])
            .await
            .map_err(map_err)?;
        let next: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) + 1 FROM policies", &[])
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?;
        tx.execute(
            "INSERT INTO policies (version, toml, applied_at, applied_by) VALUES ($1, $2, $3, $4)",
            &[&next, &toml, &at_ms, &applied_by],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(u64_of(next))
    }

    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT version, toml, applied_at, applied_by FROM policies ORDER BY version DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(map_err)?;
        row.map(|row| rows::policy(&row)).transpose().map_err(map_err)
    }
}

#[async_trait]
impl RolloutStore for PgStore {
    async fn create_rollout(&self, rollout: RolloutRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO rollouts (id, target, grace_ms, recheck_every_ms, max_attempts, selector, auto_update_now,
                started_at, started_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &rollout.id,
                &rollout.target,
                &rollout.grace_ms,
                &rollout.recheck_every_ms,
                &i64::from(rollout.max_attempts),
                &rollout.selector,
                &rollout.auto_update_now,
                &rollout.started_at_ms,
                &rollout.started_by,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_rollouts(&self) -> StoreResult<Vec<RolloutRow>> {
        let rows = self
            .query(
                &format!("SELECT * FROM rollouts ORDER BY started_at DESC, id {C} DESC"),
                &[],
            )
            .await?;
        map_rows(rows, rows::rollout)
    }

    async fn cancel_rollout(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let changed = self
            .execute(
                "UPDATE rollouts SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL",
                &[&id, &at_ms],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn members(&self, rollout_id: &str) -> StoreResult<Vec<MemberRow>> {
        let rows = self
            .query("SELECT * FROM rollout_members WHERE rollout_id = $1", &[&rollout_id])
            .await?;
        map_rows(rows, rows::member)
    }

    async fn save_members(&self, members: Vec<MemberRow>, transitions: Vec<TransitionRow>) -> StoreResult<()> {
        if members.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !members.is_empty() {
            // One row per (rollout, agent) here: the engine builds them from a map.
            let mut columns: (
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<bool>,
                Vec<i64>,
                Vec<i64>,
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<String>,
            ) = Default::default();
            // Beside the tuple: `Default` stops at twelve elements.
            let mut rechecked_at: Vec<i64> = Vec::with_capacity(members.len());
            for member in members {
                columns.0.push(member.rollout_id);
                columns.1.push(member.agent_id);
                columns.2.push(member.state.storage().to_string());
                columns.3.push(member.state.hard_flag());
                columns.4.push(member.since_ms);
                columns.5.push(i64::from(member.attempts));
                columns.6.push(member.next_recheck_ms);
                columns.7.push(member.cause);
                columns.8.push(rows::failing_json(&member.failing));
                columns.9.push(member.update_agent);
                columns.10.push(i64::from(member.blocks));
                columns.11.push(member.auto_update_for);
                rechecked_at.push(member.rechecked_at_ms);
            }
            tx.execute(
                "INSERT INTO rollout_members
                    (rollout_id, agent_id, state, hard, since, attempts, next_recheck, cause, failing, update_agent,
                     blocks, auto_update_for, rechecked_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[], $6::bigint[],
                                      $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[],
                                      $13::bigint[])
                 ON CONFLICT (rollout_id, agent_id) DO UPDATE SET state = excluded.state, hard = excluded.hard,
                    since = excluded.since, attempts = excluded.attempts, next_recheck = excluded.next_recheck,
                    cause = excluded.cause, failing = excluded.failing, update_agent = excluded.update_agent,
                    blocks = excluded.blocks, auto_update_for = excluded.auto_update_for,
                    rechecked_at = excluded.rechecked_at",
                &[
                    &columns.0,
                    &columns.1,
                    &columns.2,
                    &columns.3,
                    &columns.4,
                    &columns.5,
                    &columns.6,
                    &columns.7,
                    &columns.8,
                    &columns.9,
                    &columns.10,
                    &columns.11,
                    &rechecked_at,
                ],
            )
            .await
            .map_err(map_err)?;
        }
        if !transitions.is_empty() {
            let mut columns: (
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
            ) = Default::default();
            for transition in transitions {
                columns.0.push(transition.rollout_id);
                columns.1.push(transition.agent_id);
                columns.2.push(transition.at_ms);
                columns.3.push(transition.from_state);
                columns.4.push(transition.to_state);
                columns.5.push(transition.cause);
            }
            // ORDER BY ord: ids follow the order given, as rowids do.
            tx.execute(
                "INSERT INTO transitions (rollout_id, agent_id, at, from_state, to_state, cause)
                 SELECT rollout_id, agent_id, at, from_state, to_state, cause
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
                      WITH ORDINALITY AS u(rollout_id, agent_id, at, from_state, to_state, cause, ord)
                 ORDER BY ord",
                &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn transitions(&self, rollout_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let rows = self
            .query(
                "SELECT * FROM transitions WHERE rollout_id = $1 ORDER BY at, id",
                &[&rollout_id],
            )
            .await?;
        map_rows(rows, rows::transition)
    }

    async fn latest_checks_since(&self, after_ms: i64) -> StoreResult<Vec<CheckRunRow>> {
        let rows = self
            .query(
                "SELECT a.id, a.checks_at, a.checks_received_at, r.body FROM agents a
                 JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.checks_received_at > $1",
                &[&after_ms],
            )
            .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let body: Vec<u8> = row.try_get(3).map_err(map_err)?;
            runs.push(CheckRunRow {
                agent_id: row.try_get(0).map_err(map_err)?,
                observed_at_ms: row.try_get(1).map_err(map_err)?,
                received_at_ms: row.try_get(2).map_err(map_err)?,
                checks: super::checks_of_report(&body),
            });
        }
        Ok(runs)
    }

    async fn agent_transitions(&self, agent_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let rows = self
            .query(
                "SELECT * FROM transitions WHERE agent_id = $1 ORDER BY at, id",
                &[&agent_id],
            )
            .await?;
        map_rows(rows, rows::transition)
    }
}

#[async_trait]
impl CommandStore for PgStore {
    async fn create_commands(&self, commands: Vec<CommandRow>) -> StoreResult<()> {
        if commands.is_empty() {
            return Ok(());
        }
        let mut columns: (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            Vec<Option<i64>>,
        ) = Default::default();
        for command in commands {
            columns.0.push(command.id);
            columns.1.push(command.batch_id);
            columns.2.push(command.agent_id);
            columns.3.push(i64::from(command.kind));
            columns.4.push(command.rollout_id);
            columns.5.push(command.target);
            columns.6.push(command.origin);
            columns.7.push(i64::from(command.splay_ms));
            columns.8.push(command.created_at_ms);
            columns.9.push(command.expires_at_ms);
            columns.10.push(command.delivered_at_ms);
        }
        self.execute(
            "INSERT INTO commands (id, batch_id, agent_id, kind, rollout_id, target, origin, splay_ms, created_at,
                expires_at, delivered_at)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                                  $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])",
            &[
                &columns.0,
                &columns.1,
                &columns.2,
                &columns.3,
                &columns.4,
                &columns.5,
                &columns.6,
                &columns.7,
                &columns.8,
                &columns.9,
                &columns.10,
            ],
        )
        .await?;
        Ok(())
    }

    async fn undelivered_commands(&self, agent_id: &str, now_ms: i64) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query(
                &format!(
                    "SELECT * FROM commands WHERE agent_id = $1 AND delivered_at IS NULL AND NOT expired
                     AND expires_at > $2 ORDER BY created_at, id {C}"
                ),
                &[&agent_id, &now_ms],
            )
            .await?;
        map_rows(rows, rows::command)
    }

    async fn mark_delivered(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE commands SET delivered_at = $2 WHERE id = ANY($1) AND delivered_at IS NULL",
            &[&ids, &at_ms],
        )
        .await?;
        Ok(())
    }

    async fn expire_commands(&self, now_ms: i64) -> StoreResult<u64> {
        self.execute(
            "UPDATE commands SET expired = true WHERE delivered_at IS NULL AND NOT expired AND expires_at <= $1",
            &[&now_ms],
        )
        .await
    }

    async fn batch_commands(&self, batch_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query("SELECT * FROM commands WHERE batch_id = $1", &[&batch_id])
            .await?;
        map_rows(rows, rows::command)
    }

    async fn batch_tally(&self, batch_id: &str) -> StoreResult<super::BatchTally> {
        let rows = self.query(super::BATCH_TALLY_SQL, &[&batch_id]).await?;
        let mut tally = super::BatchTally::default();
        for row in &rows {
            let state: String = row.try_get(0).map_err(map_err)?;
            tally.add(
                &state,
                row.try_get(1).map_err(map_err)?,
                row.try_get(2).map_err(map_err)?,
            );
        }
        Ok(tally)
    }

    async fn rollout_commands(&self, rollout_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rows = self
            .query(
                &format!("SELECT * FROM commands WHERE rollout_id = $1 ORDER BY created_at, id {C}"),
                &[&rollout_id],
            )
            .await?;
        map_rows(rows, rows::command)
    }

    async fn undelivered_for_agents(
        &self,
        agent_ids: Option<Vec<String>>,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<CommandRow>> {
        let limit = i64::from(limit);
        let rows = match agent_ids {
            Some(ids) => {
                self.query(
                    &format!(
                        "SELECT * FROM commands WHERE agent_id = ANY($1) AND delivered_at IS NULL AND NOT expired
                         AND expires_at > $2 ORDER BY created_at, id {C} LIMIT $3"
                    ),
                    &[&ids, &now_ms, &limit],
                )
                .await?
            }
            None => {
                self.query(
                    &format!(
                        "SELECT * FROM commands WHERE delivered_at IS NULL AND NOT expired AND expires_at > $1
                         ORDER BY created_at, id {C} LIMIT $2"
                    ),
                    &[&now_ms, &limit],
                )
                .await?
            }
        };
        map_rows(rows, rows::command)
    }

    async fn claim_delivery(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "UPDATE commands SET delivered_at = $2 WHERE id = ANY($1) AND delivered_at IS NULL AND NOT expired
                 RETURNING id",
                &[&ids, &at_ms],
            )
            .await?;
        map_rows(rows, |row| row.try_get(0))
    }

    async fn release_delivery(&self, ids: Vec<String>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE commands SET delivered_at = NULL WHERE id = ANY($1) AND answered_at IS NULL",
            &[&ids],
        )
        .await?;
        Ok(())
    }
}

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

#[async_trait]
impl RetentionStore for PgStore {
    async fn delete_old_reports(
        &self,
        before_ms: i64,
        keep: RetentionKeep,
        cursor: i64,
        limit: u32,
    ) -> StoreResult<RetentionBatch> {
        let update_now_since = keep.update_now_since_ms.unwrap_or(i64::MAX);
        let update_now_kind = proto::ReportKind::UpdateNowAgent as i64;
        let limit = i64::from(limit);
        // One statement, one transaction: the batch is the next `limit`
        // reports by receive time from the cursor (index reports_received).
        let rows = self
            .query(
                "WITH batch AS (
                    SELECT agent_id, seq, received_at FROM reports
                    WHERE received_at >= $1 AND received_at < $2
                    ORDER BY received_at LIMIT $3
                ), gone AS (
                    DELETE FROM reports r USING batch b
                    WHERE r.agent_id = b.agent_id AND r.seq = b.seq
                      AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = r.agent_id
                          AND (a.last_seq = r.seq OR a.checks_seq = r.seq))
                      AND NOT (r.kind = $4 AND r.observed_at >= $5)
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM batch),
                       (SELECT max(received_at) FROM batch)",
                &[&cursor, &before_ms, &limit, &update_now_kind, &update_now_since],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Other("retention batch returned no row".into()))?;
        let deleted: i64 = row.try_get(0).map_err(map_err)?;
        let seen: i64 = row.try_get(1).map_err(map_err)?;
        let newest: Option<i64> = row.try_get(2).map_err(map_err)?;
        // A short batch reached the cutoff. Otherwise go on from the newest
        // receive time seen (rows sharing it may be left); when a whole
        // batch shared the cursor's millisecond (all kept), step past it.
        let next = match newest {
            Some(newest) if seen >= limit => Some(if newest > cursor { newest } else { cursor + 1 }),
            _ => None,
        };
        Ok(RetentionBatch {
            deleted: u64::try_from(deleted).unwrap_or(0),
            next,
        })
    }

    async fn store_bytes(&self) -> StoreResult<u64> {
        let rows = self
            .query(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
            )
            .await?;
        let bytes: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(map_err)?,
            None => 0,
        };
        Ok(u64::try_from(bytes).unwrap_or(0))
    }
}

#[async_trait]
impl ReplicationStore for PgStore {
    async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> StoreResult<bool> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, {DB_NOW_MS} + $3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < {DB_NOW_MS}
                     RETURNING holder"
                ),
                &[&name, &holder, &ttl_ms],
            )
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.execute(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(())
    }

    async fn notify(&self, notice: Notice) -> StoreResult<()> {
        let payload = encode_notice(&self.replica, notice);
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload]).await?;
        Ok(())
    }

    async fn subscribe(&self, shutdown: CancellationToken) -> StoreResult<Option<mpsc::Receiver<Notice>>> {
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        let target = self.pool.target.clone();
        let replica = self.replica.clone();
        let closed = self.pool.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listen(target, replica, tx, shutdown) => {}
                () = closed.cancelled() => {}
            }
        });
        Ok(Some(rx))
    }
}
